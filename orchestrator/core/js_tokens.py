"""A JavaScript tokenizer just good enough to find a module's top-level `import` and `export`.

The linker (`core.esm_link`) must never mistake text in a string, a template literal, a regular
expression or a comment for a statement, and must know the bracket depth of every token. So this
reads the whole language's lexical grammar (ECMA-262 §12: comments, string, template and regular
expression literals, punctuators), and nothing of its syntax beyond brackets. Anything it cannot
read for sure (an unterminated literal, an unbalanced bracket) is an error, never a guess.

Where the grammar is ambiguous without a parser (`/` as division or as the start of a regular
expression, §12 "the InputElementRegExp goal"), the previous token decides, as in every
hand-written JS lexer: after a value (a name, a literal, `)`, `]`, `}`, `++`, `--`) it divides,
elsewhere (after an operator, `(`, `,`, a keyword such as `return`) it starts a literal. A wrong
guess cannot pass silently: it leaves a literal or a bracket unterminated.
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple

Kind = Literal["name", "number", "string", "template", "regex", "punct"]

_MASTER = re.compile(
    r"""
    (?P<space>[ \t\r\n\f\v\u00a0\ufeff\u2028\u2029]+)
  | (?P<line_comment>//[^\n\r\u2028\u2029]*)
  | (?P<block_comment>/\*[\s\S]*?\*/)
  | (?P<string>'(?:[^'\\\n\r]|\\[\s\S])*'|"(?:[^"\\\n\r]|\\[\s\S])*")
  | (?P<name>[A-Za-z_$\u0080-\U0010ffff][A-Za-z0-9_$\u0080-\U0010ffff]*)
  | (?P<number>(?:0[xXoObB][0-9a-fA-F_]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d+)?)n?)
  | (?P<punct>>>>=|\.\.\.|===|!==|\*\*=|<<=|>>=|>>>|&&=|\|\|=|\?\?=|=>|==|!=|<=|>=|&&|\|\||\?\?|\?\.
      |\+\+|--|\+=|-=|\*=|%=|&=|\|=|\^=|\*\*|<<|>>|[{}()\[\];,<>+\-*%&|^!~?:=.@\#])
    """,
    re.VERBOSE,
)
_KEYWORDS_BEFORE_EXPRESSION = frozenset(
    {"return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case", "do", "else"}
    | {"yield", "await"}
)
"""After these a `/` starts a regular expression (they end no value)."""
_VALUE_END_PUNCTUATORS = frozenset({")", "]", "}", "++", "--"})
_OPENERS = {"(": ")", "[": "]", "{": "}"}


class JsSyntaxError(ValueError):
    """The text is not JavaScript this tokenizer can read for sure."""


class Token(NamedTuple):
    # A named tuple, not a frozen dataclass: a module makes thousands, and this is 3x cheaper.
    kind: Kind
    text: str
    start: int
    end: int
    depth: int
    """Open brackets (`(`, `[`, `{`, `${`) around the token; 0 is the module's top level."""


def _line(source: str, at: int) -> int:
    return source.count("\n", 0, at) + 1


def _scan_regex(source: str, start: int, where: str) -> int:
    """End of the regular expression literal starting at `start` (a `/`), flags included."""
    i, in_class = start + 1, False
    while i < len(source):
        ch = source[i]
        if ch == "\\":
            i += 2
            continue
        if ch in "\n\r\u2028\u2029":
            break
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "/":
            i += 1
            while i < len(source) and (source[i].isalnum() or source[i] in "_$"):
                i += 1
            return i
        i += 1
    raise JsSyntaxError(f"{where}:{_line(source, start)}: unterminated regular expression literal")


def _scan_template(source: str, start: int, where: str) -> tuple[int, bool]:
    """From just after a backtick or a `}` closing a substitution: (end, ends at a `${`)."""
    i = start
    while i < len(source):
        ch = source[i]
        if ch == "\\":
            i += 2
        elif ch == "`":
            return i + 1, False
        elif ch == "$" and source.startswith("${", i):
            return i + 2, True
        else:
            i += 1
    raise JsSyntaxError(f"{where}:{_line(source, start)}: unterminated template literal")


def tokenize(source: str, where: str = "<source>") -> list[Token]:
    """Every token of `source` but spaces and comments, each with its bracket depth."""
    tokens: list[Token] = []
    stack: list[str] = []
    """Open brackets; `${` marks a template substitution (its `}` resumes the template)."""
    i = 0
    while i < len(source):
        previous = tokens[-1] if tokens else None
        ch = source[i]
        if ch == "`" or (ch == "}" and stack and stack[-1] == "${"):
            if ch == "}":
                stack.pop()
            begin = i
            i, substitution = _scan_template(source, i + 1, where)
            tokens.append(Token("template", source[begin:i], begin, i, len(stack)))
            if substitution:
                stack.append("${")
            continue
        match = _MASTER.match(source, i)
        if match is not None and match.lastgroup in ("space", "line_comment", "block_comment"):
            i = match.end()
            continue
        if source.startswith("/*", i):
            raise JsSyntaxError(f"{where}:{_line(source, i)}: unterminated comment")
        if ch == "/":
            if _regex_allowed(previous):
                end = _scan_regex(source, i, where)
                tokens.append(Token("regex", source[i:end], i, end, len(stack)))
            else:
                end = i + (2 if source.startswith("/=", i) else 1)
                tokens.append(Token("punct", source[i:end], i, end, len(stack)))
            i = end
            continue
        if match is None:
            what = "unterminated string literal" if ch in "'\"" else f"unexpected character {ch!r}"
            raise JsSyntaxError(f"{where}:{_line(source, i)}: {what}")
        kind = match.lastgroup
        text = match.group()
        if kind == "punct" and text in _OPENERS:
            tokens.append(Token("punct", text, i, match.end(), len(stack)))
            stack.append(text)
        elif kind == "punct" and text in (")", "]", "}"):
            if not stack or _OPENERS.get(stack[-1]) != text:
                raise JsSyntaxError(f"{where}:{_line(source, i)}: unbalanced {text!r}")
            stack.pop()
            tokens.append(Token("punct", text, i, match.end(), len(stack)))
        else:
            tokens.append(Token(kind, text, i, match.end(), len(stack)))  # type: ignore[arg-type]
        i = match.end()
    if stack:
        raise JsSyntaxError(f"{where}: unclosed {stack[-1]!r} at the end of the module")
    return tokens


def _regex_allowed(previous: Token | None) -> bool:
    if previous is None:
        return True
    if previous.kind == "punct":
        return previous.text not in _VALUE_END_PUNCTUATORS
    if previous.kind == "name":
        return previous.text in _KEYWORDS_BEFORE_EXPRESSION
    # A template head or middle (`...${`) opens an expression; a whole template is a value.
    return previous.kind == "template" and previous.text.endswith("${")
