// The text a client is sent while a sequence generates: tokens in, well-formed UTF-8 out, with
// OpenAI's `stop` strings matched across token boundaries and never sent.
//
// Tokens are rendered as the runtime's streaming generator renders them
// (runtime/src/generator.cpp): the concatenation of token_to_piece(id, render_special=false),
// so control tokens (EOS, <|im_end|>, ...) add no text. That is Tokenizer::decode() for the
// byte-level BPE models (the default model); SentencePiece's decode() also drops the space
// prefix of the first token of a text, which is right for a whole text but not for generated
// tokens that continue a prompt, so the stream keeps that space (as llama.cpp's server does).
//
// Ownership: holds a reference to the tokenizer, which must outlive the stream (the model owns
// it). Thread safety: none; one stream per sequence, used by one thread at a time.
#pragma once

#include <string>
#include <vector>

#include "halyard/runtime/tokenizer.h"

namespace halyard::server {

class TextStream {
 public:
  // stops: OpenAI's `stop` strings (the server allows up to 4); empty ones are ignored.
  TextStream(const runtime::Tokenizer& tokenizer, std::vector<std::string> stops);

  struct Piece {
    std::string text;
    bool stopped = false;
  };

  // The text that can be sent now that `token` was generated: whole UTF-8 characters only
  // (ill-formed bytes become U+FFFD); text that could be the start of a stop string is held
  // back until it is known not to be. When a stop string completes, `stopped` is true and `text`
  // is everything before it; the stop string and anything after it are never returned. After
  // that every call returns no text and stopped == true.
  Piece push(runtime::TokenId token);

  // At the end of a generation that did not stop: everything still held back, an incomplete
  // UTF-8 tail as U+FFFD. (In the odd case that the U+FFFD completes a stop string containing
  // one, only the text before it is returned and stopped() turns true.) Later calls return "".
  std::string finish();

  // True once a stop string matched.
  bool stopped() const { return stopped_; }

 private:
  Piece release();

  const runtime::Tokenizer& tokenizer_;
  std::vector<std::string> stops_;
  std::string pending_bytes_;  // an incomplete UTF-8 sequence, waiting for its next bytes
  std::string held_;           // well-formed text not yet sent: it may begin a stop string
  bool stopped_ = false;
  bool finished_ = false;
};

}  // namespace halyard::server
