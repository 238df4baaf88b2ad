#include "parser.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "error.h"

namespace halyard::runtime::jinja {
namespace {

using T = Token::Type;

class Parser {
 public:
  Parser(const std::vector<Token>& tokens, int max_nesting) : t_(tokens), max_nesting_(max_nesting) {}

  Program run() {
    Program p;
    std::string stop;
    p.body = body({}, stop);
    return p;
  }

 private:
  // Guards recursion: a template nesting deeper than the limit is an error, not a stack overflow.
  struct Depth {
    explicit Depth(Parser& p) : p_(p) {
      if (++p_.depth_ > p_.max_nesting_)
        throw JinjaLimitError("the template nests more than " + std::to_string(p_.max_nesting_) + " levels",
                              p_.peek().line);
    }
    ~Depth() { --p_.depth_; }
    Parser& p_;
  };

  const Token& peek(std::size_t k = 0) const {
    const std::size_t i = pos_ + k;
    return i < t_.size() ? t_[i] : t_.back();
  }
  const Token& next() {
    const Token& tok = peek();
    if (pos_ < t_.size() - 1)
      ++pos_;
    return tok;
  }
  bool is_op(std::string_view op, std::size_t k = 0) const { return peek(k).type == T::kOp && peek(k).text == op; }
  bool is_name(std::string_view n, std::size_t k = 0) const { return peek(k).type == T::kName && peek(k).text == n; }
  bool accept_op(std::string_view op) {
    if (!is_op(op))
      return false;
    next();
    return true;
  }
  bool accept_name(std::string_view n) {
    if (!is_name(n))
      return false;
    next();
    return true;
  }
  [[noreturn]] void fail(const std::string& what) const { throw JinjaError(what, peek().line); }
  std::string describe(const Token& tok) const {
    switch (tok.type) {
      case T::kEnd:
        return "the end of the template";
      case T::kBlockEnd:
        return "'%}'";
      case T::kPrintEnd:
        return "'}}'";
      case T::kText:
        return "text";
      default:
        return "'" + tok.text + "'";
    }
  }
  void expect_op(std::string_view op) {
    if (!accept_op(op))
      fail("expected '" + std::string(op) + "', found " + describe(peek()));
  }
  std::string expect_name() {
    if (peek().type != T::kName)
      fail("expected a name, found " + describe(peek()));
    return next().text;
  }
  void expect_block_end() {
    if (peek().type != T::kBlockEnd)
      fail("expected '%}', found " + describe(peek()));
    next();
  }

  // Statements until a {% stop %} tag (one of `stops`); `stop` gets which, the position is then
  // after the stop keyword. At the top level `stops` is empty and the end of input ends it.
  Body body(const std::vector<std::string>& stops, std::string& stop) {
    Depth d(*this);
    Body out;
    while (true) {
      const Token& tok = peek();
      if (tok.type == T::kEnd) {
        if (!stops.empty())
          fail("the template ended inside a block; expected {% " + stops.front() + " %}");
        return out;
      }
      if (tok.type == T::kText) {
        auto n = std::make_shared<Node>();
        n->kind = Node::Kind::kText;
        n->line = tok.line;
        n->text = tok.text;
        next();
        out.push_back(n);
        continue;
      }
      if (tok.type == T::kPrintBegin) {
        next();
        auto n = std::make_shared<Node>();
        n->kind = Node::Kind::kPrint;
        n->line = tok.line;
        n->expr = expression();
        if (peek().type != T::kPrintEnd)
          fail("expected '}}', found " + describe(peek()));
        next();
        out.push_back(n);
        continue;
      }
      if (tok.type != T::kBlockBegin)
        fail("unexpected " + describe(tok));
      next();
      if (peek().type != T::kName)
        fail("expected a statement name after '{%', found " + describe(peek()));
      const std::string word = peek().text;
      for (const auto& s : stops) {
        if (word == s) {
          next();
          stop = word;
          return out;
        }
      }
      out.push_back(statement());
    }
  }

  NodePtr statement() {
    const Token& kw = next();
    const int line = kw.line;
    auto n = std::make_shared<Node>();
    n->line = line;
    const std::string& w = kw.text;
    std::string stop;
    if (w == "if") {
      n->kind = Node::Kind::kIf;
      ExprPtr cond = expression();
      expect_block_end();
      ++soft_;
      struct Soft {
        ~Soft() { --s; }
        int& s;
      } soft{soft_};
      while (true) {
        Body b = body({"elif", "else", "endif"}, stop);
        n->branches.emplace_back(cond, std::move(b));
        if (stop == "endif")
          break;
        if (stop == "elif") {
          cond = expression();
          expect_block_end();
          continue;
        }
        expect_block_end();
        Body e = body({"endif"}, stop);
        n->branches.emplace_back(nullptr, std::move(e));
        break;
      }
      expect_block_end();
      return n;
    }
    if (w == "for") {
      n->kind = Node::Kind::kFor;
      n->targets.push_back(expect_name());
      while (accept_op(","))
        n->targets.push_back(expect_name());
      if (!accept_name("in"))
        fail("expected 'in' in the for loop, found " + describe(peek()));
      n->expr = ternary_free_expression();
      if (accept_name("if"))
        n->condition = expression(false);
      if (is_name("recursive"))
        fail("unsupported: recursive for loops");
      expect_block_end();
      n->body = body({"else", "endfor"}, stop);
      if (stop == "else") {
        expect_block_end();
        n->else_body = body({"endfor"}, stop);
      }
      expect_block_end();
      return n;
    }
    if (w == "set") {
      const std::string first = expect_name();
      if (accept_op(".")) {
        auto target = std::make_shared<Expr>();
        target->kind = Expr::Kind::kGetAttr;
        target->line = line;
        target->name = expect_name();
        auto obj = std::make_shared<Expr>();
        obj->kind = Expr::Kind::kName;
        obj->name = first;
        obj->line = line;
        target->children.push_back(obj);
        (void)sealed(target);
        n->kind = Node::Kind::kSet;
        n->target_expr = target;
        expect_op("=");
        n->expr = tuple_or_expression();
        expect_block_end();
        return n;
      }
      n->targets.push_back(first);
      while (accept_op(","))
        n->targets.push_back(expect_name());
      if (accept_op("=")) {
        n->kind = Node::Kind::kSet;
        n->expr = tuple_or_expression();
        expect_block_end();
        return n;
      }
      if (n->targets.size() != 1)
        fail("expected '=' in the set statement");
      n->kind = Node::Kind::kSetBlock;
      if (is_op("|"))
        n->expr = filter_chain(nullptr);
      expect_block_end();
      n->body = body({"endset"}, stop);
      expect_block_end();
      return n;
    }
    if (w == "macro") {
      n->kind = Node::Kind::kMacro;
      n->name = expect_name();
      signature(*n);
      expect_block_end();
      n->body = body({"endmacro"}, stop);
      if (peek().type == T::kName)
        next();  // {% endmacro name %}
      expect_block_end();
      return n;
    }
    if (w == "call") {
      n->kind = Node::Kind::kCallBlock;
      if (is_op("("))
        signature(*n);
      n->expr = expression();
      if (n->expr->kind != Expr::Kind::kCall)
        fail("expected a macro call after {% call %}");
      expect_block_end();
      n->body = body({"endcall"}, stop);
      expect_block_end();
      return n;
    }
    if (w == "filter") {
      n->kind = Node::Kind::kFilterBlock;
      n->expr = filter_chain(nullptr, /*leading_bar=*/false);
      expect_block_end();
      n->body = body({"endfilter"}, stop);
      expect_block_end();
      return n;
    }
    if (w == "break" || w == "continue") {
      n->kind = w == "break" ? Node::Kind::kBreak : Node::Kind::kContinue;
      expect_block_end();
      return n;
    }
    if (w == "generation") {
      n->kind = Node::Kind::kScope;
      expect_block_end();
      n->body = body({"endgeneration"}, stop);
      expect_block_end();
      return n;
    }
    throw JinjaError("unsupported statement '" + w + "'", line);
  }

  void signature(Node& n) {
    expect_op("(");
    while (!is_op(")")) {
      n.params.push_back(expect_name());
      n.defaults.push_back(accept_op("=") ? expression() : nullptr);
      if (!accept_op(","))
        break;
    }
    expect_op(")");
  }

  // Sets the node's depth; a tree deeper than the limit (a chain of 10^5 additions) is refused,
  // since evaluating and freeing it recurse once per level.
  ExprPtr sealed(std::shared_ptr<Expr> e) {
    int d = 0;
    for (const auto& c : e->children)
      if (c)
        d = std::max(d, c->depth);
    for (const auto& [k, c] : e->kwargs)
      d = std::max(d, c->depth);
    e->depth = d + 1;
    if (e->depth > max_nesting_)
      throw JinjaLimitError("an expression nests more than " + std::to_string(max_nesting_) + " levels", e->line);
    return e;
  }

  ExprPtr make(Expr::Kind kind, int line, std::vector<ExprPtr> children = {}) {
    auto e = std::make_shared<Expr>();
    e->kind = kind;
    e->line = line;
    e->children = std::move(children);
    return sealed(e);
  }

  // `a, b` without parentheses, as the right side of set allows.
  ExprPtr tuple_or_expression() {
    const int line = peek().line;
    ExprPtr first = expression();
    if (!is_op(","))
      return first;
    std::vector<ExprPtr> items{first};
    while (accept_op(",")) {
      if (peek().type == T::kBlockEnd)
        break;
      items.push_back(expression());
    }
    return make(Expr::Kind::kTuple, line, std::move(items));
  }

  ExprPtr ternary_free_expression() { return expression(false); }

  ExprPtr expression(bool with_condition = true) {
    Depth d(*this);
    ExprPtr e = or_expr();
    if (with_condition && is_name("if")) {
      const int line = next().line;
      ExprPtr cond = or_expr();
      ExprPtr otherwise;
      if (accept_name("else"))
        otherwise = expression();
      return make(Expr::Kind::kCondition, line, {e, cond, otherwise});
    }
    return e;
  }

  ExprPtr or_expr() {
    ExprPtr e = and_expr();
    while (is_name("or")) {
      const int line = next().line;
      e = make(Expr::Kind::kOr, line, {e, and_expr()});
    }
    return e;
  }

  ExprPtr and_expr() {
    ExprPtr e = not_expr();
    while (is_name("and")) {
      const int line = next().line;
      e = make(Expr::Kind::kAnd, line, {e, not_expr()});
    }
    return e;
  }

  ExprPtr not_expr() {
    if (is_name("not")) {
      Depth d(*this);
      const int line = next().line;
      return make(Expr::Kind::kNot, line, {not_expr()});
    }
    return compare();
  }

  ExprPtr compare() {
    const int line = peek().line;
    ExprPtr first = math1();
    std::vector<ExprPtr> operands{first};
    std::vector<std::string> ops;
    while (true) {
      std::string op;
      if (peek().type == T::kOp && (peek().text == "==" || peek().text == "!=" || peek().text == "<" ||
                                    peek().text == "<=" || peek().text == ">" || peek().text == ">=")) {
        op = next().text;
      } else if (is_name("in")) {
        next();
        op = "in";
      } else if (is_name("not") && is_name("in", 1)) {
        next();
        next();
        op = "not in";
      } else {
        break;
      }
      ops.push_back(op);
      operands.push_back(math1());
    }
    if (ops.empty())
      return first;
    auto e = std::make_shared<Expr>();
    e->kind = Expr::Kind::kCompare;
    e->line = line;
    e->children = std::move(operands);
    e->ops = std::move(ops);
    return sealed(e);
  }

  ExprPtr binary(ExprPtr l, const Token& op, ExprPtr r) {
    auto e = std::make_shared<Expr>();
    e->kind = Expr::Kind::kBinary;
    e->line = op.line;
    e->name = op.text;
    e->children = {std::move(l), std::move(r)};
    return sealed(e);
  }

  ExprPtr math1() {
    ExprPtr e = concat();
    while (is_op("+") || is_op("-")) {
      const Token& op = next();
      e = binary(e, op, concat());
    }
    return e;
  }

  ExprPtr concat() {
    ExprPtr e = math2();
    while (is_op("~")) {
      const Token& op = next();
      e = binary(e, op, math2());
    }
    return e;
  }

  ExprPtr math2() {
    ExprPtr e = power();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& op = next();
      e = binary(e, op, power());
    }
    return e;
  }

  ExprPtr power() {
    ExprPtr e = unary(true);
    while (is_op("**")) {
      const Token& op = next();
      e = binary(e, op, unary(true));
    }
    return e;
  }

  ExprPtr unary(bool with_filter) {
    Depth d(*this);
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      const Token& op = next();
      e = make(Expr::Kind::kUnary, op.line, {unary(false)});
      std::const_pointer_cast<Expr>(e)->name = op.text;
    } else {
      e = postfix(primary());
    }
    if (with_filter)
      e = filter_and_test(e);
    return e;
  }

  ExprPtr filter_and_test(ExprPtr e) {
    while (true) {
      if (is_op("|")) {
        e = filter_chain(e);
      } else if (is_name("is")) {
        e = test(e);
      } else if (is_op("(") || is_op(".") || is_op("[")) {
        e = postfix(e);
      } else {
        return e;
      }
    }
  }

  // One or more `| name(args)` applied to `operand` (null in a filter block or block set).
  ExprPtr filter_chain(ExprPtr operand, bool leading_bar = true) {
    ExprPtr e = operand;
    bool need_bar = leading_bar;
    while (true) {
      if (need_bar && !accept_op("|"))
        return e;
      need_bar = true;
      const int line = peek().line;
      std::string name = expect_name();
      while (accept_op("."))
        name += "." + expect_name();
      if (!is_known_filter(name) && soft_ == 0)
        throw JinjaError("unsupported filter '" + name + "'", line);
      auto f = std::make_shared<Expr>();
      f->kind = Expr::Kind::kFilter;
      f->line = line;
      f->name = name;
      f->children.push_back(e);
      if (is_op("("))
        call_arguments(*f);
      e = sealed(f);
    }
  }

  ExprPtr test(ExprPtr operand) {
    const int line = next().line;  // is
    auto t = std::make_shared<Expr>();
    t->kind = Expr::Kind::kTest;
    t->line = line;
    t->negated = accept_name("not");
    std::string name;
    if (peek().type == T::kName) {
      name = next().text;
      while (accept_op("."))
        name += "." + expect_name();
    } else if (peek().type == T::kOp && (peek().text == "==" || peek().text == "!=" || peek().text == "<" ||
                                         peek().text == "<=" || peek().text == ">" || peek().text == ">=")) {
      name = next().text;
    } else {
      fail("expected a test name after 'is', found " + describe(peek()));
    }
    if (!is_known_test(name) && soft_ == 0)
      throw JinjaError("unsupported test '" + name + "'", line);
    t->name = name;
    t->children.push_back(operand);
    if (is_op("(")) {
      call_arguments(*t);
    } else if ((peek().type == T::kName && peek().text != "else" && peek().text != "or" && peek().text != "and" &&
                peek().text != "if" && peek().text != "is" && peek().text != "in" && peek().text != "not") ||
               peek().type == T::kString || peek().type == T::kInt || peek().type == T::kFloat || is_op("[") ||
               is_op("{") || is_op("-")) {
      // `x is divisibleby 3`: one argument without parentheses.
      t->children.push_back(postfix(primary_or_negative()));
    }
    return sealed(t);
  }

  ExprPtr primary_or_negative() {
    if (is_op("-")) {
      const Token& op = next();
      ExprPtr e = make(Expr::Kind::kUnary, op.line, {primary()});
      std::const_pointer_cast<Expr>(e)->name = "-";
      return e;
    }
    return primary();
  }

  void call_arguments(Expr& call) {
    expect_op("(");
    while (!is_op(")")) {
      if (peek().type == T::kName && is_op("=", 1)) {
        std::string key = next().text;
        next();
        call.kwargs.emplace_back(std::move(key), expression());
      } else {
        if (is_op("*") || is_op("**"))
          fail("unsupported: *args and **kwargs in calls");
        if (!call.kwargs.empty())
          fail("a positional argument follows a keyword argument");
        call.children.push_back(expression());
      }
      if (!accept_op(","))
        break;
    }
    expect_op(")");
  }

  ExprPtr postfix(ExprPtr e) {
    while (true) {
      if (is_op(".")) {
        const int line = next().line;
        auto a = std::make_shared<Expr>();
        if (peek().type == T::kInt) {
          a->kind = Expr::Kind::kGetItem;
          a->line = line;
          a->children = {e, literal(Value::integer(std::strtoll(next().text.c_str(), nullptr, 10)), line)};
        } else {
          a->kind = Expr::Kind::kGetAttr;
          a->line = line;
          a->name = expect_name();
          a->children = {e};
        }
        e = sealed(a);
      } else if (is_op("[")) {
        const int line = next().line;
        e = subscript(e, line);
      } else if (is_op("(")) {
        auto c = std::make_shared<Expr>();
        c->kind = Expr::Kind::kCall;
        c->line = peek().line;
        c->children.push_back(e);
        call_arguments(*c);
        e = sealed(c);
      } else {
        return e;
      }
    }
  }

  ExprPtr subscript(ExprPtr obj, int line) {
    ExprPtr parts[3];
    int n = 0;
    bool is_slice = false;
    while (true) {
      if (is_op(":")) {
        next();
        is_slice = true;
        if (++n > 2)
          fail("a slice has at most three parts");
        continue;
      }
      if (is_op("]"))
        break;
      if (parts[n])
        fail("expected ']' or ':' in the subscript, found " + describe(peek()));
      parts[n] = expression();
    }
    expect_op("]");
    if (!is_slice) {
      if (!parts[0])
        fail("an empty subscript");
      return make(Expr::Kind::kGetItem, line, {obj, parts[0]});
    }
    return make(Expr::Kind::kSlice, line, {obj, parts[0], parts[1], parts[2]});
  }

  ExprPtr literal(Value v, int line) {
    auto e = std::make_shared<Expr>();
    e->kind = Expr::Kind::kLiteral;
    e->line = line;
    e->literal = std::move(v);
    return e;
  }

  ExprPtr primary() {
    Depth d(*this);
    const Token& tok = peek();
    const int line = tok.line;
    switch (tok.type) {
      case T::kName: {
        next();
        const std::string& n = tok.text;
        if (n == "true" || n == "True")
          return literal(Value::boolean(true), line);
        if (n == "false" || n == "False")
          return literal(Value::boolean(false), line);
        if (n == "none" || n == "None")
          return literal(Value::none(), line);
        auto e = std::make_shared<Expr>();
        e->kind = Expr::Kind::kName;
        e->line = line;
        e->name = n;
        return e;
      }
      case T::kString: {
        std::string s = next().text;
        while (peek().type == T::kString)  // adjacent literals join, as in Python
          s += next().text;
        return literal(Value::string(std::move(s)), line);
      }
      case T::kInt: {
        const std::string& text = next().text;
        std::int64_t v = 0;
        const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
        if (r.ec != std::errc())
          return literal(Value::number(std::strtod(text.c_str(), nullptr)), line);
        return literal(Value::integer(v), line);
      }
      case T::kFloat:
        return literal(Value::number(std::strtod(next().text.c_str(), nullptr)), line);
      case T::kOp:
        if (tok.text == "(") {
          next();
          if (accept_op(")"))
            return make(Expr::Kind::kTuple, line);
          ExprPtr first = expression();
          if (accept_op(")"))
            return first;
          std::vector<ExprPtr> items{first};
          while (accept_op(",")) {
            if (is_op(")"))
              break;
            items.push_back(expression());
          }
          expect_op(")");
          return make(Expr::Kind::kTuple, line, std::move(items));
        }
        if (tok.text == "[") {
          next();
          std::vector<ExprPtr> items;
          while (!is_op("]")) {
            items.push_back(expression());
            if (!accept_op(","))
              break;
          }
          expect_op("]");
          return make(Expr::Kind::kList, line, std::move(items));
        }
        if (tok.text == "{") {
          next();
          std::vector<ExprPtr> items;
          while (!is_op("}")) {
            items.push_back(expression());
            expect_op(":");
            items.push_back(expression());
            if (!accept_op(","))
              break;
          }
          expect_op("}");
          return make(Expr::Kind::kDict, line, std::move(items));
        }
        break;
      default:
        break;
    }
    fail("unexpected " + describe(tok) + " in an expression");
  }

  const std::vector<Token>& t_;
  std::size_t pos_ = 0;
  int depth_ = 0;
  int max_nesting_;
  // Inside an if statement's branches an unknown filter or test is an error only when it is
  // evaluated, as jinja2 compiles it (a template may guard a filter only some runtimes have).
  int soft_ = 0;
};

}  // namespace

Program parse_tokens(const std::vector<Token>& tokens, int max_nesting) {
  return Parser(tokens, max_nesting).run();
}

}  // namespace halyard::runtime::jinja
