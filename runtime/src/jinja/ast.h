// The parsed form of a template: expressions and statements, as the parser builds them and the
// interpreter walks them. Nodes are immutable once parsed and shared (macros keep their body).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "value.h"

namespace halyard::runtime::jinja {

struct Expr;
using ExprPtr = std::shared_ptr<const Expr>;

struct Expr {
  enum class Kind {
    kLiteral,    // literal
    kName,       // name
    kList,       // children: items
    kTuple,      // children: items (a list at run time)
    kDict,       // children: key, value, key, value, ...
    kGetAttr,    // children[0].name
    kGetItem,    // children[0][children[1]]
    kSlice,      // children[0][children[1]:children[2]:children[3]], absent bounds null
    kCall,       // children[0](children[1..], kwargs)
    kFilter,     // children[0] | name(children[1..], kwargs); children[0] null in a filter block
    kTest,       // children[0] is [not] name(children[1..])
    kUnary,      // name ("-", "+") children[0]
    kBinary,     // children[0] name children[1]: + - * / // % ** ~
    kCompare,    // children[0] ops[0] children[1] ops[1] ... (chained, as Python)
    kAnd,        // children[0] and children[1]
    kOr,         // children[0] or children[1]
    kNot,        // not children[0]
    kCondition,  // children[0] if children[1] else children[2] (null: undefined)
  };
  Kind kind;
  int line = 0;
  Value literal;
  std::string name;
  std::vector<ExprPtr> children;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;
  bool negated = false;
  int depth = 1;  // of the tree under this node; the parser bounds it
};

struct Node;
using NodePtr = std::shared_ptr<const Node>;
using Body = std::vector<NodePtr>;

struct Node {
  enum class Kind {
    kText,         // text
    kPrint,        // {{ expr }}
    kIf,           // branches: (condition, body); the else branch has a null condition
    kFor,          // for targets in expr [if condition]: body [else: else_body]
    kSet,          // set targets = expr, or set target_expr (ns.attr) = expr
    kSetBlock,     // set targets[0] [| filter] %} body {% endset; expr: the filter chain or null
    kMacro,        // macro name(params = defaults): body
    kCallBlock,    // call[(params)] expr %} body {% endcall
    kFilterBlock,  // filter expr %} body {% endfilter
    kBreak,
    kContinue,
    kScope,  // a body rendered in place: {% generation %} (transformers' tag for assistant masks)
  };
  Kind kind;
  int line = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr condition;
  ExprPtr target_expr;
  std::vector<std::pair<ExprPtr, Body>> branches;
  std::vector<std::string> targets;
  Body body;
  Body else_body;
  std::string name;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // one per param, null when it has none
};

struct Program {
  Body body;
};

}  // namespace halyard::runtime::jinja
