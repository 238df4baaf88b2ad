// The chat page served at GET / (server/assets/chat.html, embedded at build time: no file to
// deploy, nothing fetched from elsewhere).
#pragma once

#include <string_view>

namespace halyard::server {

std::string_view chat_page_html();

}  // namespace halyard::server
