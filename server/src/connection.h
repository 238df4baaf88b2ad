// Whether an HTTP client is still there. cpp-httplib 0.11 (Debian 12's) gives a handler no way
// to learn that its client disconnected until a write fails, and a request that is queued, or
// decoding between two tokens, or not streamed at all, writes nothing for a long time. So the
// handler finds its connection's socket once (the open socket whose local and remote addresses
// are the request's) and peeks at it: an orderly close or a reset means the client is gone.
// Thread safety: stateless; the socket stays open while the handler runs (the library closes it
// after the response), so the descriptor cannot be reused under the handler.
#pragma once

#include <string>

namespace halyard::server {

// The descriptor of the connected socket with these endpoints, or -1 when none is found.
int find_connection_socket(const std::string& local_addr, int local_port, const std::string& remote_addr,
                           int remote_port);
// True when the peer closed or reset the connection; false while it is open (also when it has
// sent more data, such as a pipelined request) or when fd is -1.
bool peer_closed(int fd);

}  // namespace halyard::server
