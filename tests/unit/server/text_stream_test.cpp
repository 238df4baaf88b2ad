#include "text_stream.h"

#include <gtest/gtest.h>

#include "default_tokenizer.h"
#include "utf8_sanitize.h"

namespace halyard::server {
namespace {

using runtime::GgufFile;
using runtime::TokenId;
using runtime::Tokenizer;

const std::string kFffd(kReplacementCharacter);

std::string sanitize(std::string_view bytes, bool final, std::size_t* consumed = nullptr) {
  std::string out;
  const std::size_t n = append_well_formed_utf8(bytes, final, out);
  if (consumed)
    *consumed = n;
  return out;
}

bool well_formed(const std::string& s) {
  return sanitize(s, true) == s;
}

// Expected results are what Python's bytes.decode("utf-8", "replace") gives.
TEST(Utf8Sanitize, PassesWellFormedTextThrough) {
  const std::string text = "a\xC3\xA9\xE6\x97\xA5\xF0\x9F\xA6\x99z";  // a é 日 🦙 z
  std::size_t consumed = 0;
  EXPECT_EQ(sanitize(text, false, &consumed), text);
  EXPECT_EQ(consumed, text.size());
}

TEST(Utf8Sanitize, LeavesACutOffSequenceForTheNextChunk) {
  std::size_t consumed = 0;
  EXPECT_EQ(sanitize("a\xE6\x97", false, &consumed), "a");
  EXPECT_EQ(consumed, 1u);
  EXPECT_EQ(sanitize("a\xE6\x97", true, &consumed), "a" + kFffd);  // one U+FFFD for the cut-off tail
  EXPECT_EQ(consumed, 3u);
  EXPECT_EQ(sanitize("\xF0\x9F\xA6", true), kFffd);
}

TEST(Utf8Sanitize, ReplacesEachMaximalIllFormedSubpart) {
  EXPECT_EQ(sanitize("\x80", false), kFffd);              // stray continuation byte
  EXPECT_EQ(sanitize("\xC0\xAF", false), kFffd + kFffd);  // overlong lead
  EXPECT_EQ(sanitize("\xE6\x97"                           // cut short by 'a':
                     "a",
                     false),
            kFffd + "a");                                                         // one subpart
  EXPECT_EQ(sanitize("\xED\xA0\x80", false), kFffd + kFffd + kFffd);              // a surrogate
  EXPECT_EQ(sanitize("\xF4\x90\x80\x80", false), kFffd + kFffd + kFffd + kFffd);  // above U+10FFFF
  EXPECT_EQ(sanitize("\xFF"
                     "b",
                     false),
            kFffd + "b");
}

// The default model's tokenizer (byte-level BPE), read from the GGUF as the runtime tests do.
class TextStreamTest : public testing::DefaultTokenizerTest {
 protected:
  std::vector<TokenId> encode(const std::string& text) const { return tokenizer_->encode(text, false, false); }

  // Pushes every token; returns the pieces.
  std::vector<TextStream::Piece> push_all(TextStream& stream, const std::vector<TokenId>& ids) const {
    std::vector<TextStream::Piece> pieces;
    for (TokenId id : ids) {
      pieces.push_back(stream.push(id));
      EXPECT_TRUE(well_formed(pieces.back().text)) << "token " << id;
    }
    return pieces;
  }

  static std::string joined(const std::vector<TextStream::Piece>& pieces) {
    std::string s;
    for (const auto& p : pieces)
      s += p.text;
    return s;
  }

  // The index of the piece that reported the stop (all later ones report it too); -1 if none.
  static int stop_index(const std::vector<TextStream::Piece>& pieces) {
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      if (pieces[i].stopped)
        return static_cast<int>(i);
    }
    return -1;
  }

  // Whether `s` lies within one token's text (so a test meant to cross tokens really does).
  bool inside_one_token(const std::vector<TokenId>& ids, const std::string& s) const {
    for (TokenId id : ids) {
      if (tokenizer_->token_to_piece(id, false).find(s) != std::string::npos)
        return true;
    }
    return false;
  }
};

const std::vector<std::string> kTexts = {
    "Hello world, this is a test.",
    "The answer is 42.\nUser: thanks",
    "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE\xE3\x83\x86\xE3\x82\xAD\xE3\x82\xB9\xE3\x83\x88",  // 日本語のテキスト
    "\xF0\x9F\xA6\x99 llama \xC3\xBCn\xC3\xAF"
    "c\xC3\xB6"
    "d\xC3\xA9 \xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82",
};

TEST_F(TextStreamTest, WithoutAStopTheTextIsTheDecodedTokens) {
  for (const std::string& text : kTexts) {
    const auto ids = encode(text);
    ASSERT_EQ(tokenizer_->decode(ids, false), text);
    for (const std::vector<std::string>& stops :
         {std::vector<std::string>{}, std::vector<std::string>{"zzz", "\xE6\x97\xA5\xE6\x97\xA5", "test!"}}) {
      TextStream stream(*tokenizer_, stops);
      const auto pieces = push_all(stream, ids);
      EXPECT_EQ(stop_index(pieces), -1);
      EXPECT_EQ(joined(pieces) + stream.finish(), tokenizer_->decode(ids, false)) << text;
      EXPECT_FALSE(stream.stopped());
    }
  }
}

TEST_F(TextStreamTest, MultiByteCharactersSplitAcrossTokensAreSentWhole) {
  const std::string text = kTexts[2];  // 日本語のテキスト
  const auto ids = encode(text);
  // The tokenizer splits 日 (E6 97 A5) after two bytes: the first token alone is no character.
  ASSERT_EQ(tokenizer_->token_to_piece(ids[0], false), "\xE6\x97");
  TextStream stream(*tokenizer_, {});
  const auto pieces = push_all(stream, ids);
  EXPECT_EQ(pieces[0].text, "");
  EXPECT_EQ(pieces[1].text, "\xE6\x97\xA5");  // 日
  EXPECT_EQ(joined(pieces) + stream.finish(), text);
  // Same for the 4-byte llama emoji, split 2 + 1 + 1.
  const auto emoji = encode(kTexts[3]);
  ASSERT_EQ(tokenizer_->token_to_piece(emoji[0], false), "\xF0\x9F");
  TextStream s2(*tokenizer_, {});
  const auto p2 = push_all(s2, emoji);
  EXPECT_EQ(p2[0].text, "");
  EXPECT_EQ(p2[1].text, "");
  EXPECT_EQ(p2[2].text, "\xF0\x9F\xA6\x99");
}

TEST_F(TextStreamTest, StopStringSplitAcrossTwoTokens) {
  const auto ids = encode("Hello world, this is a test.");  // Hello| world|,| this| is| a| test|.
  ASSERT_FALSE(inside_one_token(ids, "world,"));
  TextStream stream(*tokenizer_, {"world,"});
  const auto pieces = push_all(stream, ids);
  ASSERT_EQ(stop_index(pieces), 2);  // completed by ","
  EXPECT_EQ(pieces[0].text, "Hello");
  EXPECT_EQ(pieces[1].text, " ");  // "world" is held: it could begin the stop string
  EXPECT_EQ(pieces[2].text, "");
  EXPECT_EQ(joined(pieces), "Hello ");
  for (std::size_t i = 3; i < pieces.size(); ++i)
    EXPECT_TRUE(pieces[i].stopped && pieces[i].text.empty());
  EXPECT_EQ(stream.finish(), "");
  EXPECT_TRUE(stream.stopped());
}

TEST_F(TextStreamTest, StopStringSplitAcrossThreeTokens) {
  const auto ids = encode("Hello world, this is a test.");
  ASSERT_FALSE(inside_one_token(ids, "s is a"));  // " this" + " is" + " a"
  TextStream stream(*tokenizer_, {"s is a"});
  const auto pieces = push_all(stream, ids);
  ASSERT_EQ(stop_index(pieces), 5);
  EXPECT_EQ(pieces[3].text, " thi");
  EXPECT_EQ(pieces[4].text, "");
  EXPECT_EQ(joined(pieces), "Hello world, thi");
}

TEST_F(TextStreamTest, StopStringAtTheVeryStart) {
  const auto ids = encode("Hello world, friend");
  for (const std::string stop : {"Hello", "Hel"}) {
    TextStream stream(*tokenizer_, {stop});
    const auto first = stream.push(ids[0]);
    EXPECT_TRUE(first.stopped) << stop;
    EXPECT_EQ(first.text, "") << stop;
  }
  TextStream stream(*tokenizer_, {"Hello wor"});  // crosses into the second token
  const auto pieces = push_all(stream, ids);
  ASSERT_EQ(stop_index(pieces), 1);
  EXPECT_EQ(joined(pieces), "");
}

TEST_F(TextStreamTest, APartialMatchThatFailsIsReleased) {
  const std::string text = "Hello world, friend";
  const auto ids = encode(text);  // Hello| world|,| friend
  TextStream stream(*tokenizer_, {"world peace"});
  const auto pieces = push_all(stream, ids);
  EXPECT_EQ(stop_index(pieces), -1);
  EXPECT_EQ(pieces[1].text, " ");       // "world" might begin "world peace"
  EXPECT_EQ(pieces[2].text, "world,");  // "," rules it out: the held text goes out
  EXPECT_EQ(joined(pieces) + stream.finish(), text);
}

TEST_F(TextStreamTest, HeldTextIsFlushedByFinish) {
  const auto ids = encode("Hello world");
  TextStream stream(*tokenizer_, {"world peace"});
  const auto pieces = push_all(stream, ids);
  EXPECT_EQ(joined(pieces), "Hello ");
  EXPECT_EQ(stream.finish(), "world");
  EXPECT_FALSE(stream.stopped());
  EXPECT_EQ(stream.finish(), "");
}

TEST_F(TextStreamTest, SeveralStopsTheEarliestWins) {
  const auto ids = encode("Hello world, friend");
  {
    TextStream stream(*tokenizer_, {"friend", "zzz", "world", "end"});
    EXPECT_EQ(joined(push_all(stream, ids)), "Hello ");
  }
  {
    // A stop that completes wins over one that began earlier but is not complete yet: the
    // stream cannot wait for text that may never come.
    TextStream stream(*tokenizer_, {"lo world!", "wor"});
    const auto pieces = push_all(stream, ids);
    EXPECT_EQ(pieces[0].text, "Hel");  // "lo" is held for "lo world!"
    ASSERT_EQ(stop_index(pieces), 1);
    EXPECT_EQ(joined(pieces), "Hello ");
  }
  {
    TextStream stream(*tokenizer_, {"or", "Hello world, friend and more"});
    EXPECT_EQ(joined(push_all(stream, ids)), "Hello w");  // inside one token
  }
}

TEST_F(TextStreamTest, MultiByteStopStringAcrossTokens) {
  const auto ids = encode(kTexts[2]);                   // 日本語のテキスト; 語 is split over three tokens
  const std::string stop = "\xE8\xAA\x9E\xE3\x81\xAE";  // 語の
  ASSERT_FALSE(inside_one_token(ids, stop));
  TextStream stream(*tokenizer_, {stop});
  const auto pieces = push_all(stream, ids);
  EXPECT_NE(stop_index(pieces), -1);
  EXPECT_EQ(joined(pieces), "\xE6\x97\xA5\xE6\x9C\xAC");  // 日本
}

TEST_F(TextStreamTest, IllFormedBytesBecomeReplacementCharacters) {
  const auto c3 = tokenizer_->find("\xC3\x83");  // byte-level BPE's token for the lone byte 0xC3
  const auto a = tokenizer_->find("a");
  ASSERT_TRUE(c3 && a);
  ASSERT_EQ(tokenizer_->token_to_piece(*c3, false), "\xC3");
  {
    TextStream stream(*tokenizer_, {});
    EXPECT_EQ(stream.push(*c3).text, "");  // may still become a character
    EXPECT_EQ(stream.push(*a).text, kFffd + "a");
    EXPECT_EQ(stream.finish(), "");
  }
  {
    TextStream stream(*tokenizer_, {});
    EXPECT_EQ(stream.push(*a).text, "a");
    EXPECT_EQ(stream.push(*c3).text, "");
    EXPECT_EQ(stream.finish(), kFffd);  // an incomplete tail at the end
  }
  {
    // A raw (non-JSON) caller's ill-formed stop string is compared in its well-formed form.
    TextStream stream(*tokenizer_, {"\xC3"});
    EXPECT_EQ(stream.push(*a).text, "a");
    EXPECT_EQ(stream.push(*c3).text, "");
    const auto last = stream.push(*a);
    EXPECT_TRUE(last.stopped);
    EXPECT_EQ(last.text, "");
  }
  {
    // The U+FFFD that finish() makes of a cut-off tail can complete a stop string.
    TextStream stream(*tokenizer_, {kFffd});
    EXPECT_EQ(stream.push(*a).text, "a");
    EXPECT_EQ(stream.push(*c3).text, "");
    EXPECT_EQ(stream.finish(), "");
    EXPECT_TRUE(stream.stopped());
  }
}

TEST_F(TextStreamTest, ControlTokensAddNoText) {
  const auto hello = encode("Hello");
  const auto world = encode(" world");
  TextStream stream(*tokenizer_, {"lo wo"});
  EXPECT_EQ(stream.push(hello[0]).text, "Hel");
  EXPECT_EQ(stream.push(*tokenizer_->find("<|im_start|>")).text, "");
  const auto last = stream.push(world[0]);  // the stop still matches across the control token
  EXPECT_TRUE(last.stopped);
  EXPECT_EQ(last.text, "");
  TextStream plain(*tokenizer_, {});
  EXPECT_EQ(plain.push(tokenizer_->eos()).text, "");
  EXPECT_EQ(plain.finish(), "");
}

TEST_F(TextStreamTest, EmptyStopStringsAreIgnored) {
  const std::string text = "Hello world";
  TextStream stream(*tokenizer_, {"", ""});
  const auto pieces = push_all(stream, encode(text));
  EXPECT_EQ(joined(pieces) + stream.finish(), text);
}

TEST_F(TextStreamTest, OutOfRangeTokenAddsNoText) {
  TextStream stream(*tokenizer_, {});
  EXPECT_EQ(stream.push(-1).text, "");
  EXPECT_EQ(stream.push(static_cast<TokenId>(tokenizer_->vocab_size())).text, "");
  EXPECT_EQ(stream.finish(), "");
}

}  // namespace
}  // namespace halyard::server
