// The Jinja interpreter construct by construct, its errors and its bounds. The expected texts are
// what Python's jinja2 3.1 renders in transformers' environment (trim_blocks, lstrip_blocks,
// tojson as json.dumps with ensure_ascii=False); tests/chat-templates/compare_jinja2.py checks
// whole model templates against jinja2 itself.
#include "halyard/runtime/jinja.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace halyard::runtime::jinja {
namespace {

using json = nlohmann::ordered_json;

std::string render(std::string_view source, const json& context = json::object(), Limits limits = {}) {
  auto t = Template::parse(source, limits);
  if (!t.is_ok())
    return "PARSE ERROR: " + t.status().message();
  auto r = t->render(context, 0);
  if (!r.is_ok())
    return "RENDER ERROR: " + r.status().message();
  return r.value();
}

Status render_status(std::string_view source, const json& context = json::object(), Limits limits = {}) {
  auto t = Template::parse(source, limits);
  if (!t.is_ok())
    return t.status();
  auto r = t->render(context, 0);
  return r.is_ok() ? Status::ok() : r.status();
}

TEST(Jinja, TextAndPrint) {
  EXPECT_EQ(render("Hello {{ name }}!", {{"name", "World"}}), "Hello World!");
  EXPECT_EQ(render("{{ 1 }} {{ 1.5 }} {{ true }} {{ none }} {{ 'a' }}"), "1 1.5 True None a");
  EXPECT_EQ(render("{{ [1, 'a', none, true] }} {{ {'k': 'v'} }}"), "[1, 'a', None, True] {'k': 'v'}");
  EXPECT_EQ(render("{# a comment #}x"), "x");
  EXPECT_EQ(render("{{ 1e3 }} {{ 0.1 + 0.2 }} {{ 10 / 4 }} {{ 1e16 }}"), "1000.0 0.30000000000000004 2.5 1e+16");
}

TEST(Jinja, OneTrailingNewlineIsDropped) {
  EXPECT_EQ(render("a\n"), "a");
  EXPECT_EQ(render("a\n\n"), "a\n");
  EXPECT_EQ(render("a\r\nb"), "a\nb");
}

TEST(Jinja, WhitespaceControl) {
  EXPECT_EQ(render("a  {{- 'b' -}}  c"), "abc");
  EXPECT_EQ(render("a\n  {%- if true -%}\n  b\n{%- endif %}"), "ab");
  // trim_blocks: the newline after a block tag goes; lstrip_blocks: the indent before it goes.
  EXPECT_EQ(render("{% if true %}\n  x\n  {% endif %}\ny"), "  x\ny");
  EXPECT_EQ(render("  {# c #}\nz"), "z");
  // Print tags are not block tags.
  EXPECT_EQ(render("  {{ 'p' }}\nq"), "  p\nq");
  // + keeps what lstrip_blocks would take.
  EXPECT_EQ(render("  {%+ if true %}x{% endif %}"), "  x");
}

TEST(Jinja, IfElifElse) {
  const char* t = "{% if n > 2 %}big{% elif n == 2 %}two{% else %}small{% endif %}";
  EXPECT_EQ(render(t, {{"n", 3}}), "big");
  EXPECT_EQ(render(t, {{"n", 2}}), "two");
  EXPECT_EQ(render(t, {{"n", 0}}), "small");
}

TEST(Jinja, ForLoopVariables) {
  EXPECT_EQ(render("{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}"
                   "{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ x }};{% endfor %}",
                   {{"xs", {"a", "b"}}}),
            "1021TrueFalse2a;2110FalseTrue2b;");
  EXPECT_EQ(render("{% for x in xs %}{{ loop.previtem }}>{{ loop.nextitem }} {% endfor %}", {{"xs", {1, 2, 3}}}),
            ">2 1>3 2> ");
  EXPECT_EQ(render("{% for x in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }},{% endfor %}", {{"d", {{"b", 1}, {"a", 2}}}}),
            "b=1,a=2,");
  EXPECT_EQ(render("{% for k in d %}{{ k }}{% endfor %}", {{"d", {{"x", 1}, {"y", 2}}}}), "xy");
  EXPECT_EQ(render("{% for x in [1,2,3,4] if x is even %}{{ x }}/{{ loop.length }} {% endfor %}"), "2/2 4/2 ");
  EXPECT_EQ(render("{% for x in [1,2,3,4] %}{% if x == 3 %}{% break %}{% endif %}{{ x }}{% endfor %}"), "12");
  EXPECT_EQ(render("{% for x in [1,2,3] %}{% if x == 2 %}{% continue %}{% endif %}{{ x }}{% endfor %}"), "13");
  EXPECT_EQ(render("{% for x in 'ab' %}{{ loop.cycle('o', 'e') }}{{ x }}{% endfor %}"), "oaeb");
}

TEST(Jinja, SetScopesAndNamespace) {
  EXPECT_EQ(render("{% set a = 1 %}{% for x in [1] %}{% set a = 2 %}{% endfor %}{{ a }}"), "1");
  EXPECT_EQ(render("{% set ns = namespace(a=1) %}{% for x in [1] %}{% set ns.a = 2 %}{% endfor %}{{ ns.a }}"), "2");
  EXPECT_EQ(render("{% if true %}{% set a = 3 %}{% endif %}{{ a }}"), "3");
  EXPECT_EQ(render("{% set a, b = [1, 2] %}{{ b }}{{ a }}"), "21");
  EXPECT_EQ(render("{% set t %}  block {{ 1 }}  {% endset %}[{{ t }}]"), "[  block 1  ]");
  EXPECT_EQ(render("{% set t | trim | upper %}  block  {% endset %}[{{ t }}]"), "[BLOCK]");
}

TEST(Jinja, NamespaceAssignmentToAPlainValueIsAnError) {
  EXPECT_EQ(render("{% set d = {} %}{% set d.a = 1 %}"),
            "RENDER ERROR: chat template: cannot assign attribute 'a' on 'd': only a namespace() takes attributes at "
            "line 1");
}

TEST(Jinja, MacroAndCall) {
  EXPECT_EQ(render("{% macro greet(name, greeting='Hi') %}{{ greeting }} {{ name }}{% endmacro %}"
                   "{{ greet('Ann') }}, {{ greet('Bob', greeting='Yo') }}"),
            "Hi Ann, Yo Bob");
  EXPECT_EQ(render("{% macro box() %}[{{ caller() }}]{% endmacro %}{% call box() %}inside{% endcall %}"), "[inside]");
  EXPECT_EQ(render("{% macro each(xs) %}{% for x in xs %}{{ caller(x) }}{% endfor %}{% endmacro %}"
                   "{% call(v) each([1, 2]) %}<{{ v }}>{% endcall %}"),
            "<1><2>");
  EXPECT_EQ(render("{% set g = 'G' %}{% macro m() %}{{ g }}{{ varargs|length }}{% endmacro %}{{ m(1, 2) }}"), "G2");
}

TEST(Jinja, FilterBlock) {
  EXPECT_EQ(render("{% filter upper %}abc{{ 'd' }}{% endfilter %}"), "ABCD");
}

TEST(Jinja, GenerationTagRendersItsBody) {
  EXPECT_EQ(render("{% generation %}x{% endgeneration %}"), "x");
}

TEST(Jinja, Expressions) {
  EXPECT_EQ(
      render("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }}"),
      "3 -4 1 2 1024 7 9");
  EXPECT_EQ(render("{{ 'a' ~ 1 ~ none }} {{ 'a' + 'b' }} {{ 'ab' * 2 }} {{ [1] + [2] }}"), "a1None ab abab [1, 2]");
  EXPECT_EQ(render("{{ 1 < 2 < 3 }} {{ 1 < 2 > 3 }} {{ 'a' in 'cat' }} {{ 2 not in [1] }} {{ 'k' in {'k': 1} }}"),
            "True False True True True");
  EXPECT_EQ(render("{{ not 1 }} {{ 0 or 'x' }} {{ 1 and 'y' }} {{ none or [] }}"), "False x y []");
  EXPECT_EQ(render("{{ 'y' if 1 else 'n' }}{{ 'y' if 0 else 'n' }}[{{ 'y' if 0 }}]"), "yn[]");
  EXPECT_EQ(render("{{ d.a.b }} {{ d['a']['b'] }} {{ l[-1] }} {{ l[0:2] }} {{ l[::-1] }} {{ 'hello'[1:3] }}",
                   {{"d", {{"a", {{"b", 5}}}}}, {"l", {1, 2, 3}}}),
            "5 5 3 [1, 2] [3, 2, 1] el");
  EXPECT_EQ(render("{{ 'héllo'[::-1] }} {{ 'héllo'|length }}"), "olléh 5");
  EXPECT_EQ(render("{{ 'a' 'b' }}"), "ab");
  EXPECT_EQ(render("{{ -x|abs }}", {{"x", 3}}), "3");
}

TEST(Jinja, ExtremeIntegersStayDefined) {
  // Steps and bounds at the edge of int64 end the sequence instead of overflowing (UBSan checks).
  EXPECT_EQ(render("{{ [1, 2, 3][1::9223372036854775807] }} {{ 'abc'[::-9223372036854775807] }}"), "[2] c");
  EXPECT_EQ(render("{{ range(9223372036854775800, 9223372036854775807, 5)|list }}"),
            "[9223372036854775800, 9223372036854775805]");
  EXPECT_EQ(render("{{ '%d' % 1e300 }}"),
            "RENDER ERROR: chat template: %d format: the number is out of range at line 1");
  EXPECT_EQ(render("{{ '{99999999999999999999}'.format(1) }}"),
            "RENDER ERROR: chat template: format: argument index 99999999999999999999 is out of range at line 1");
  // Python's ints are unbounded; here an int past int64 becomes a float (a difference from
  // jinja2 no chat template reaches).
  EXPECT_EQ(render("{{ 9223372036854775807 + 1 }} {{ -9223372036854775807 - 2 }}"),
            "9.223372036854776e+18 -9.223372036854776e+18");
}

TEST(Jinja, UndefinedBehavesAsJinja2Default) {
  EXPECT_EQ(render("[{{ nope }}]{% if nope %}t{% else %}f{% endif %}{{ nope|length }}"), "[]f0");
  EXPECT_EQ(render("{{ d.missing }}|{{ d['missing'] }}|{{ d.missing is defined }}", {{"d", json::object()}}),
            "||False");
  EXPECT_EQ(render("{% for x in nope %}x{% endfor %}done"), "done");
  // Attribute access on an undefined value is jinja2's UndefinedError.
  EXPECT_EQ(render("{{ nope.attr }}"), "RENDER ERROR: chat template: 'nope' is undefined at line 1");
  EXPECT_EQ(render("{{ d.a.b }}", {{"d", json::object()}}),
            "RENDER ERROR: chat template: 'dict object' has no attribute 'a' at line 1");
  // jinja2's wording for None (a tool-calling assistant turn's null content) and for elements.
  EXPECT_EQ(render("{{ m.content.split('x') }}", {{"m", {{"content", nullptr}}}}),
            "RENDER ERROR: chat template: 'None' has no attribute 'split' at line 1");
  EXPECT_EQ(render("{{ m.content[0].a }}", {{"m", {{"content", nullptr}}}}),
            "RENDER ERROR: chat template: None has no element 0 at line 1");
  EXPECT_EQ(render("{{ nope + 1 }}"), "RENDER ERROR: chat template: 'nope' is undefined at line 1");
  EXPECT_EQ(render("{{ none.attr }}|{{ nope is undefined }}"), "|True");
}

TEST(Jinja, StringFilters) {
  EXPECT_EQ(render("{{ '  x  '|trim }}|{{ 'aB'|upper }}|{{ 'aB'|lower }}|{{ 'hello world'|title }}|"
                   "{{ 'hELLO'|capitalize }}|{{ 'aXbX'|replace('X', '-') }}|{{ 'a b  c'|wordcount }}"),
            "x|AB|ab|Hello World|Hello|a-b-|3");
  EXPECT_EQ(render("{{ 'a\nb\n\nc'|indent(2) }}|{{ 'a\nb'|indent(2, true) }}"), "a\n  b\n\n  c|  a\n  b");
  EXPECT_EQ(render("{{ 3|string ~ 'x' }} {{ '42'|int + 1 }} {{ 'x'|int }} {{ '2.5'|float }} {{ 2.7|int }}"),
            "3x 43 0 2.5 2");
  EXPECT_EQ(render("{{ 2.5|round }} {{ 3.14159|round(2) }} {{ -3|abs }} {{ x|safe }}", {{"x", "<b>"}}),
            "2.0 3.14 3 <b>");
}

TEST(Jinja, SequenceFilters) {
  const json ctx = {
      {"msgs", {{{"role", "user"}, {"n", 1}}, {{"role", "bot"}, {"n", 2}}, {{"role", "user"}, {"n", 3}}}}};
  EXPECT_EQ(
      render("{{ [1,2,3]|first }}{{ [1,2,3]|last }}{{ 'abc'|first }}{{ [3,1]|length }}{{ [1,2]|join('-') }}", ctx),
      "13a21-2");
  EXPECT_EQ(render("{{ msgs|map(attribute='role')|join(',') }}", ctx), "user,bot,user");
  EXPECT_EQ(render("{{ msgs|selectattr('role', 'equalto', 'user')|map(attribute='n')|list }}", ctx), "[1, 3]");
  EXPECT_EQ(render("{{ msgs|rejectattr('role', '==', 'user')|map(attribute='n')|list }}", ctx), "[2]");
  EXPECT_EQ(render("{{ [1,2,3,4]|select('odd')|list }} {{ [1,none,2]|reject('none')|list }}"), "[1, 3] [1, 2]");
  EXPECT_EQ(render("{{ ['a','A','b','a']|unique|list }} {{ [3,1,2]|sort }} {{ [1,2]|reverse|list }}"),
            "['a', 'b'] [1, 2, 3] [2, 1]");
  EXPECT_EQ(render("{{ {'b': 1, 'a': 2}|items|list }} {{ {'b': 1, 'a': 2}|dictsort }}"),
            "[['b', 1], ['a', 2]] [['a', 2], ['b', 1]]");
  EXPECT_EQ(render("{{ x|default('d') }} {{ ''|default('d') }} {{ ''|d('d', true) }} {{ 'abc'|list }}"),
            "d  d ['a', 'b', 'c']");
  EXPECT_EQ(render("{{ ['a', 'b']|map('upper')|join }}"), "AB");
}

TEST(Jinja, SafeStringsEscapeWhatIsAddedToThem) {
  // markupsafe: Markup + str escapes the str (functionary's template relies on it); ~ does not.
  EXPECT_EQ(render("{{ 'a'|safe + '<\"x\">' }}|{{ '<'|safe ~ '<' }}|{{ '<&>'|e }}"),
            "a&lt;&#34;x&#34;&gt;|<<|&lt;&amp;&gt;");
}

TEST(Jinja, FilterResultsThatAreGeneratorsInJinja2BehaveAsGenerators) {
  // Always true, consumed by the first loop, not JSON and without a length, as in jinja2.
  EXPECT_EQ(render("{% set g = [1, 2]|select('odd') %}{% for x in g %}{{ x }}{% endfor %};"
                   "{% for x in g %}{{ x }}{% endfor %};{{ 'T' if [2]|select('odd') else 'F' }}"),
            "1;;T");
  EXPECT_EQ(render("{{ [1]|map('string')|tojson }}"),
            "RENDER ERROR: chat template: tojson: Object of type generator is not JSON serializable (add |list) at "
            "line 1");
  EXPECT_EQ(
      render("{{ [1]|select|length }}"),
      "RENDER ERROR: chat template: object of type 'generator' has no len() (add |list before |length) at line 1");
  EXPECT_EQ(render("{{ [1, 2]|map('string')|list|tojson }} {{ none|selectattr('a')|list }}"), R"(["1", "2"] [])");
}

TEST(Jinja, ToJsonIsPythonJsonDumps) {
  const json ctx = {{"v", {{"b", {1, 2.5, true, nullptr}}, {"a", "é\"\n<"}}}};
  EXPECT_EQ(render("{{ v|tojson }}", ctx), R"({"b": [1, 2.5, true, null], "a": "é\"\n<"})");
  EXPECT_EQ(render("{{ v|tojson(indent=2) }}", ctx),
            "{\n  \"b\": [\n    1,\n    2.5,\n    true,\n    null\n  ],\n  \"a\": \"é\\\"\\n<\"\n}");
  EXPECT_EQ(render("{{ v|tojson(sort_keys=true) }}", ctx), R"({"a": "é\"\n<", "b": [1, 2.5, true, null]})");
  EXPECT_EQ(render("{{ v|tojson(ensure_ascii=true) }}", ctx), R"({"b": [1, 2.5, true, null], "a": "\u00e9\"\n<"})");
  EXPECT_EQ(render("{{ v|tojson(separators=(',', ':')) }}", ctx), R"({"b":[1,2.5,true,null],"a":"é\"\n<"})");
  EXPECT_EQ(render("{{ '🚀'|tojson(ensure_ascii=true) }} {{ {}|tojson }} {{ []|tojson(indent=2) }}"),
            R"("\ud83d\ude80" {} [])");
}

TEST(Jinja, Tests) {
  EXPECT_EQ(render("{{ x is defined }}{{ y is undefined }}{{ none is none }}{{ 'a' is string }}{{ {} is mapping }}"
                   "{{ [] is iterable }}{{ 'a' is sequence }}{{ 1.5 is number }}{{ true is boolean }}",
                   {{"x", 1}}),
            "TrueTrueTrueTrueTrueTrueTrueTrueTrue");
  EXPECT_EQ(render("{{ 3 is odd }}{{ 3 is even }}{{ 1 is equalto 1 }}{{ true is true }}{{ 0 is false }}"
                   "{{ 6 is divisibleby 3 }}{{ 1 is not string }}{{ 2 is eq(2) }}"),
            "TrueFalseTrueTrueFalseTrueTrueTrue");
}

TEST(Jinja, Methods) {
  EXPECT_EQ(render("{{ ' a '.strip() }}|{{ 'xxaxx'.lstrip('x') }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|"
                   "{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}|{{ 'aXa'.replace('a', 'b') }}|"
                   "{{ 'aB'.upper() }}{{ 'aB'.lower() }}|{{ 'a b'.title() }}|{{ '{} {x}'.format(1, x=2) }}"),
            "a|axx|['a', 'b', '', 'c']|['a', 'b']|TrueTrue|bXb|ABab|A B|1 2");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}{{ v }}{% endfor %}{{ d.keys()|list }}{{ d.values()|list }}"
                   "{{ d.get('a') }}{{ d.get('z', 'none') }}{{ d.get('z') }}",
                   {{"d", {{"a", 1}, {"b", 2}}}}),
            "a1b2['a', 'b'][1, 2]1noneNone");
  EXPECT_EQ(render("{% set l = [] %}{% set _ = l.append(1) %}{{ l.append(2) }}{{ l }}{{ l.pop() }}{{ l }}"),
            "None[1, 2]2[1]");
  EXPECT_EQ(render("{{ '%s-%d' % ('a', 3) }}"), "a-3");
}

TEST(Jinja, RaiseExceptionAndStrftime) {
  const Status s = render_status("{{ raise_exception('roles must alternate') }}");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "the template raised an error: roles must alternate at line 1");
  // The clock is fixed at 0 (1970-01-01 in UTC; a day either side in other time zones).
  const std::string y = render("{{ strftime_now('%Y') }}");
  EXPECT_TRUE(y == "1970" || y == "1969") << y;
}

TEST(Jinja, RangeAndDict) {
  EXPECT_EQ(render("{{ range(3)|list }} {{ range(1, 7, 2)|list }} {{ dict(a=1) }}"), "[0, 1, 2] [1, 3, 5] {'a': 1}");
}

TEST(Jinja, UnknownConstructsAreErrorsNamingThemAndTheirLine) {
  EXPECT_EQ(render("a\n\n{{ x|xyz }}"), "PARSE ERROR: chat template: unsupported filter 'xyz' at line 3");
  EXPECT_EQ(render("{% if x is prime %}{% endif %}"), "PARSE ERROR: chat template: unsupported test 'prime' at line 1");
  EXPECT_EQ(render("\n{% include 'other.j2' %}"),
            "PARSE ERROR: chat template: unsupported statement 'include' at line 2");
  EXPECT_EQ(render("{% for x in y recursive %}{% endfor %}"),
            "PARSE ERROR: chat template: unsupported: recursive for loops at line 1");
  EXPECT_EQ(render("{% if x %}"),
            "PARSE ERROR: chat template: the template ended inside a block; expected {% elif %} at line 1");
  EXPECT_EQ(render("{{ 'open"), "PARSE ERROR: chat template: unterminated string literal at line 1");
  EXPECT_EQ(render("{{ x"), "PARSE ERROR: chat template: unterminated {{ expression at line 1");
  EXPECT_EQ(render("{{ 1 $ 2 }}"), "PARSE ERROR: chat template: unexpected character '$' in a tag at line 1");
  EXPECT_EQ(render("{{ 'a'.nosuch() }}"),
            "RENDER ERROR: chat template: 'str object' has no attribute 'nosuch' at line 1");
  EXPECT_EQ(render("{{ 1 + 'a' }}"),
            "RENDER ERROR: chat template: unsupported operand types for +: 'int' and 'str' at line 1");
  EXPECT_EQ(render("{{ 1 / 0 }}"), "RENDER ERROR: chat template: division by zero at line 1");
}

TEST(Jinja, AnUnknownFilterInsideAnIfFailsOnlyWhenEvaluated) {
  // jinja2 compiles a filter or test it does not know inside an if branch as a run-time error.
  EXPECT_EQ(render("{% if false %}{{ x|from_json }}{% endif %}ok"), "ok");
  EXPECT_EQ(render("{% if true %}\n{{ x|from_json }}{% endif %}"),
            "RENDER ERROR: chat template: unsupported filter 'from_json' at line 2");
  EXPECT_EQ(render("{% if x is defined and x is prime %}{% endif %}ok"),
            "PARSE ERROR: chat template: unsupported test 'prime' at line 1");
}

TEST(Jinja, LoopIterationsAreBounded) {
  Limits l;
  l.max_loop_iterations = 1000;
  const Status s =
      render_status("{% for i in range(10) %}{% for j in range(200) %}{% endfor %}{% endfor %}", json::object(), l);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("more than 1000 loop iterations"), std::string::npos) << s.message();
  // range() counts as the iterations it would make, so a huge one is refused before it is built.
  EXPECT_EQ(render_status("{{ range(1000000000000)|length }}").code(), StatusCode::kResourceExhausted);
  // Appends count too: 600 iterations + 600 appends pass 1000.
  EXPECT_EQ(
      render_status("{% set l = [] %}{% for i in range(600) %}{% set _ = l.append(i) %}{% endfor %}", json::object(), l)
          .code(),
      StatusCode::kResourceExhausted);
}

TEST(Jinja, RecursionDepthIsBounded) {
  const Status s = render_status("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("macro calls nest more than 64 deep"), std::string::npos) << s.message();
  std::string deep;
  for (int i = 0; i < 1000; ++i)
    deep += "(";
  EXPECT_EQ(render_status("{{ " + deep + " }}").code(), StatusCode::kResourceExhausted);
  // Long chains nest as deep as they are long: refused at parse, not a stack overflow later.
  std::string chain = "{{ 1";
  for (int i = 0; i < 100000; ++i)
    chain += " + 1";
  EXPECT_EQ(render_status(chain + " }}").code(), StatusCode::kResourceExhausted);
  std::string filters = "{{ 'x'";
  for (int i = 0; i < 100000; ++i)
    filters += "|trim";
  EXPECT_EQ(render_status(filters + " }}").code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(render_status(chain.substr(0, 4 + 4 * 150) + " }}").code(), StatusCode::kOk);
  // Macros nesting deep expressions are bounded by the evaluation depth.
  std::string deep_call = "{% macro f(n) %}{{ ";
  for (int i = 0; i < 150; ++i)
    deep_call += "(";
  deep_call += "f(n + 1)";
  for (int i = 0; i < 150; ++i)
    deep_call += " ~ '')";
  deep_call += " }}{% endmacro %}{{ f(0) }}";
  EXPECT_EQ(render_status(deep_call).code(), StatusCode::kResourceExhausted);
  std::string blocks;
  for (int i = 0; i < 1000; ++i)
    blocks += "{% if true %}";
  EXPECT_EQ(render_status(blocks).code(), StatusCode::kResourceExhausted);
}

TEST(Jinja, OutputSizeIsBounded) {
  Limits l;
  l.max_output_bytes = 1000;
  EXPECT_EQ(render_status("{% for i in range(100) %}0123456789x{% endfor %}", json::object(), l).code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(render_status("{{ 'x' * 100000000000 }}").code(), StatusCode::kResourceExhausted);
  // A string doubled in a loop (the loop's s carries over between iterations, as in jinja2) is
  // stopped at the bound, not at 10 GB.
  EXPECT_EQ(render_status("{% set s = 'xxxxxxxxxx' %}{% for i in range(30) %}{% set s = s ~ s %}{% endfor %}",
                          json::object(), l)
                .code(),
            StatusCode::kResourceExhausted);
}

TEST(Jinja, SelfContainingValuesAreRefused) {
  EXPECT_EQ(render("{% set l = [] %}{% set _ = l.append(l) %}"),
            "RENDER ERROR: chat template: a list or dict cannot contain itself at line 1");
  EXPECT_EQ(render("{% set ns = namespace() %}{% set ns.me = [ns] %}"),
            "RENDER ERROR: chat template: a namespace cannot hold itself at line 1");
  // Nesting built up in a loop stops at a fixed depth instead of recursing without bound later.
  EXPECT_EQ(render_status("{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}"
                          "{% endfor %}{{ ns.x }}")
                .code(),
            StatusCode::kResourceExhausted);
}

TEST(Jinja, ContextMustBeAnObject) {
  auto t = Template::parse("x");
  ASSERT_TRUE(t.is_ok());
  EXPECT_FALSE(t->render(json::array()).is_ok());
}

}  // namespace
}  // namespace halyard::runtime::jinja
