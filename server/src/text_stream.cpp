#include "text_stream.h"

#include <algorithm>

#include "utf8_sanitize.h"

namespace halyard::server {

TextStream::TextStream(const runtime::Tokenizer& tokenizer, std::vector<std::string> stops) : tokenizer_(tokenizer) {
  for (const std::string& stop : stops) {
    if (stop.empty())
      continue;
    // Matched against well-formed text, so compared in the same form (JSON strings are
    // well-formed already; this keeps a raw caller's ill-formed bytes from splitting a character).
    std::string well_formed;
    append_well_formed_utf8(stop, /*final=*/true, well_formed);
    stops_.push_back(std::move(well_formed));
  }
}

TextStream::Piece TextStream::push(runtime::TokenId token) {
  if (stopped_ || finished_)
    return {"", stopped_};
  pending_bytes_ += tokenizer_.token_to_piece(token, /*render_special=*/false);
  const std::size_t consumed = append_well_formed_utf8(pending_bytes_, /*final=*/false, held_);
  pending_bytes_.erase(0, consumed);
  return release();
}

std::string TextStream::finish() {
  if (stopped_ || finished_)
    return {};
  finished_ = true;
  append_well_formed_utf8(pending_bytes_, /*final=*/true, held_);
  pending_bytes_.clear();
  Piece last = release();
  if (!last.stopped) {
    last.text += held_;
    held_.clear();
  }
  return std::move(last.text);
}

TextStream::Piece TextStream::release() {
  // The earliest complete stop string ends the text. Everything sent so far is known not to
  // begin one (see below), so a match can only start inside held_.
  std::size_t first_stop = std::string::npos;
  for (const std::string& stop : stops_)
    first_stop = std::min(first_stop, held_.find(stop));
  if (first_stop != std::string::npos) {
    stopped_ = true;
    Piece piece{held_.substr(0, first_stop), true};
    held_.clear();
    pending_bytes_.clear();
    return piece;
  }
  // Hold back the longest tail of held_ that is a proper prefix of some stop string; the rest
  // can be sent. A stop string is well-formed UTF-8 and held_ ends on a character boundary, so
  // the tail starts on one too.
  std::size_t keep = 0;
  const std::string_view text = held_;
  for (const std::string& stop : stops_) {
    for (std::size_t n = std::min(stop.size() - 1, text.size()); n > keep; --n) {
      if (text.ends_with(std::string_view(stop).substr(0, n))) {
        keep = n;
        break;
      }
    }
  }
  Piece piece{held_.substr(0, held_.size() - keep), false};
  held_.erase(0, held_.size() - keep);
  return piece;
}

}  // namespace halyard::server
