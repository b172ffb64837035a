"""A small Painless subset for update scripts: enough for ``ctx._source`` edits such as Kibana's tag scripts.

Supported: ``def``/typed declarations, ``=``/``+=``/``-=``/``++``/``--``, ``if``/``else``, ``for (x in xs)``
and ``for (def x : xs)``, ``return``, the usual operators, ``instanceof``, ``?.``, list/map literals,
``new ArrayList()``/``new HashMap()`` and the common List/Map/String methods. Anything else is a
``compile error``, as Painless would report an unknown construct.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import ESError

_TOKEN = re.compile(r"""
    (?P<ws>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<num>\d+\.\d+|\d+)[LlFfDd]?
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<op>\?\.|\+\+|--|\+=|-=|\*=|/=|==|!=|<=|>=|&&|\|\||[-+*/%<>=!?:;,.(){}\[\]])
""", re.VERBOSE | re.DOTALL)
_TYPES = {"def", "var", "List", "ArrayList", "Map", "HashMap", "String", "int", "long", "double", "float",
          "boolean", "Object", "Set", "HashSet", "Integer", "Long", "Double"}


class _Return(Exception):
    def __init__(self, value: Any) -> None:
        super().__init__()
        self.value = value


def _compile_error(reason: str) -> ESError:
    return ESError(400, "illegal_argument_exception", "failed to compile script",
                   root_cause=[{"type": "script_exception", "reason": "compile error", "lang": "painless"}],
                   caused_by={"type": "script_exception", "reason": "compile error", "lang": "painless",
                              "caused_by": {"type": "illegal_argument_exception", "reason": reason}})


def _runtime_error(reason: str, kind: str = "null_pointer_exception") -> ESError:
    return ESError(400, "illegal_argument_exception", "failed to execute script",
                   root_cause=[{"type": "script_exception", "reason": "runtime error", "lang": "painless"}],
                   caused_by={"type": "script_exception", "reason": "runtime error", "lang": "painless",
                              "caused_by": {"type": kind, "reason": reason}})


def _tokens(src: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if not m:
            raise _compile_error(f"unexpected character [{src[pos]}] at position {pos}")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind == "ws":
            continue
        text = m.group(kind)
        out.append((kind, text))
    out.append(("eof", ""))
    return out


Node = tuple[Any, ...]


class _Parser:
    def __init__(self, src: str) -> None:
        self.toks = _tokens(src)
        self.i = 0

    def peek(self, k: int = 0) -> tuple[str, str]:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def take(self, text: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if text is not None and tok[1] != text:
            raise _compile_error(f"expected [{text}] but found [{tok[1] or 'EOF'}]")
        self.i += 1
        return tok

    def accept(self, text: str) -> bool:
        if self.peek()[1] == text and self.peek()[0] != "str":
            self.i += 1
            return True
        return False

    # ------------------------------------------------------------------ statements
    def program(self) -> list[Node]:
        stmts = []
        while self.peek()[0] != "eof":
            stmts.append(self.statement())
        return stmts

    def block_or_statement(self) -> list[Node]:
        if self.accept("{"):
            stmts = []
            while not self.accept("}"):
                if self.peek()[0] == "eof":
                    raise _compile_error("unterminated block")
                stmts.append(self.statement())
            return stmts
        return [self.statement()]

    def _is_declaration(self) -> bool:
        kind, text = self.peek()
        if kind != "name" or text not in _TYPES:
            return False
        k = 1
        if self.peek(k)[1] == "<":       # generics: List<String> x
            depth = 0
            while True:
                t = self.peek(k)[1]
                depth += (t == "<") - (t == ">")
                k += 1
                if depth == 0 or t == "":
                    break
        return self.peek(k)[0] == "name"

    def _skip_type(self) -> None:
        self.take()
        if self.accept("<"):
            depth = 1
            while depth:
                t = self.take()[1]
                depth += (t == "<") - (t == ">")

    def statement(self) -> Node:
        if self.accept(";"):
            return ("block", [])
        text = self.peek()[1]
        if text == "{":
            return ("block", self.block_or_statement())
        if text == "if" and self.peek()[0] == "name":
            self.take()
            self.take("(")
            cond = self.expr()
            self.take(")")
            then = self.block_or_statement()
            other = self.block_or_statement() if self.accept("else") else []
            return ("if", cond, then, other)
        if text == "for" and self.peek()[0] == "name":
            self.take()
            self.take("(")
            if self.peek()[1] in _TYPES and self.peek(1)[0] == "name":
                self._skip_type()
            var = self.take()[1]
            if not (self.accept("in") or self.accept(":")):
                raise _compile_error("only for-each loops are supported")
            seq = self.expr()
            self.take(")")
            return ("for", var, seq, self.block_or_statement())
        if text == "return" and self.peek()[0] == "name":
            self.take()
            value = None if self.peek()[1] == ";" else self.expr()
            self.accept(";")
            return ("return", value)
        if self._is_declaration():
            self._skip_type()
            name = self.take()[1]
            value = self.expr() if self.accept("=") else None
            self.accept(";")
            return ("decl", name, value)
        target = self.expr()
        op = self.peek()[1]
        if op in ("=", "+=", "-=", "*=", "/="):
            self.take()
            value = self.expr()
            self.accept(";")
            return ("assign", op, target, value)
        if op in ("++", "--"):
            self.take()
            self.accept(";")
            return ("assign", "+=" if op == "++" else "-=", target, ("lit", 1))
        self.accept(";")
        return ("expr", target)

    # ------------------------------------------------------------------ expressions
    def expr(self) -> Node:
        cond = self.binary(0)
        if self.accept("?"):
            a = self.expr()
            self.take(":")
            b = self.expr()
            return ("cond", cond, a, b)
        return cond

    _LEVELS = (("||",), ("&&",), ("==", "!="), ("<", ">", "<=", ">=", "instanceof"), ("+", "-"), ("*", "/", "%"))

    def binary(self, level: int) -> Node:
        if level == len(self._LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek()[1] in self._LEVELS[level] and self.peek()[0] != "str":
            op = self.take()[1]
            if op == "instanceof":
                left = ("instanceof", left, self.take()[1])
                continue
            left = ("bin", op, left, self.binary(level + 1))
        return left

    def unary(self) -> Node:
        if self.accept("!"):
            return ("not", self.unary())
        if self.accept("-"):
            return ("neg", self.unary())
        if self.peek()[1] == "(" and self.peek(1)[1] in _TYPES and self.peek(2)[1] == ")":
            self.take()
            self.take()
            self.take()
            return self.unary()      # a cast: values are already dynamic
        return self.postfix(self.primary())

    def primary(self) -> Node:
        kind, text = self.take()
        if kind == "num":
            return ("lit", float(text) if "." in text else int(text))
        if kind == "str":
            return ("lit", bytes(text[1:-1], "utf-8").decode("unicode_escape"))
        if text == "(":
            inner = self.expr()
            self.take(")")
            return inner
        if text == "[":
            if self.accept(":"):
                self.take("]")
                return ("map", [])
            items: list[Any] = []
            is_map = False
            while not self.accept("]"):
                key = self.expr()
                if self.accept(":"):
                    is_map = True
                    items.append((key, self.expr()))
                else:
                    items.append(key)
                self.accept(",")
            return ("map", items) if is_map else ("list", items)
        if kind == "name":
            if text in ("true", "false"):
                return ("lit", text == "true")
            if text == "null":
                return ("lit", None)
            if text == "new":
                type_name = self.take()[1]
                if self.accept("<"):
                    while not self.accept(">"):
                        self.take()
                self.take("(")
                args = self.args()
                return ("new", type_name, args)
            return ("var", text)
        raise _compile_error(f"unexpected token [{text or 'EOF'}]")

    def args(self) -> list[Node]:
        args = []
        while not self.accept(")"):
            args.append(self.expr())
            self.accept(",")
        return args

    def postfix(self, node: Node) -> Node:
        while True:
            if self.peek()[1] in (".", "?.") and self.peek()[0] == "op":
                safe = self.take()[1] == "?."
                name = self.take()[1]
                node = ("call", node, name, self.args(), safe) if self.accept("(") else ("field", node, name, safe)
            elif self.peek()[1] == "[" and self.peek()[0] == "op":
                self.take()
                key = self.expr()
                self.take("]")
                node = ("index", node, key)
            else:
                return node


def _truthy(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _runtime_error(f"Cannot cast {type(value).__name__} to boolean", "class_cast_exception")
    return value


def _instanceof(value: Any, type_name: str) -> bool:
    kinds: dict[str, Callable[[Any], bool]] = {
        "List": lambda v: isinstance(v, list), "ArrayList": lambda v: isinstance(v, list),
        "Map": lambda v: isinstance(v, dict), "HashMap": lambda v: isinstance(v, dict),
        "String": lambda v: isinstance(v, str), "Object": lambda v: v is not None,
        "Number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "Integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "Long": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "Double": lambda v: isinstance(v, float), "Boolean": lambda v: isinstance(v, bool),
    }
    test = kinds.get(type_name)
    if test is None:
        raise _compile_error(f"unknown type [{type_name}]")
    return test(value)


class _Interp:
    def __init__(self, variables: dict[str, Any]) -> None:
        self.scopes: list[dict[str, Any]] = [variables]

    def lookup(self, name: str) -> Any:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        raise _compile_error(f"cannot resolve symbol [{name}]")

    def set_var(self, name: str, value: Any) -> None:
        for scope in reversed(self.scopes):
            if name in scope:
                scope[name] = value
                return
        raise _compile_error(f"cannot resolve symbol [{name}]")

    def run(self, stmts: list[Node]) -> None:
        for stmt in stmts:
            self.exec(stmt)

    def exec(self, node: Node) -> None:
        kind = node[0]
        if kind == "block":
            self.scopes.append({})
            try:
                self.run(node[1])
            finally:
                self.scopes.pop()
        elif kind == "decl":
            self.scopes[-1][node[1]] = None if node[2] is None else self.eval(node[2])
        elif kind == "assign":
            self.assign(node[1], node[2], node[3])
        elif kind == "expr":
            self.eval(node[1])
        elif kind == "if":
            self.exec(("block", node[2] if _truthy(self.eval(node[1])) else node[3]))
        elif kind == "for":
            seq = self.eval(node[2])
            if seq is None:
                raise _runtime_error("cannot iterate over null")
            for item in list(seq.keys() if isinstance(seq, dict) else seq):
                self.scopes.append({node[1]: item})
                try:
                    self.run(node[3])
                finally:
                    self.scopes.pop()
        elif kind == "return":
            raise _Return(None if node[1] is None else self.eval(node[1]))
        else:
            raise _compile_error(f"unsupported statement [{kind}]")

    def assign(self, op: str, target: Node, value_node: Node) -> None:
        value = self.eval(value_node)
        if op != "=":
            current = self.eval(target)
            value = self.binop({"+=": "+", "-=": "-", "*=": "*", "/=": "/"}[op], current, value)
        if target[0] == "var":
            self.set_var(target[1], value)
        elif target[0] in ("field", "index"):
            container = self.eval(target[1])
            key = target[2] if target[0] == "field" else self.eval(target[2])
            if container is None:
                raise _runtime_error(f"cannot set [{key}] on null")
            if isinstance(container, list):
                container[int(key)] = value
            elif isinstance(container, dict):
                container[key] = value
            else:
                raise _runtime_error(f"cannot set [{key}] on a {type(container).__name__}",
                                     "illegal_argument_exception")
        else:
            raise _compile_error("invalid assignment target")

    def binop(self, op: str, a: Any, b: Any) -> Any:
        if op == "+":
            if isinstance(a, str) or isinstance(b, str):
                return _to_str(a) + _to_str(b)
            return _num(a) + _num(b)
        if op == "-":
            return _num(a) - _num(b)
        if op == "*":
            return _num(a) * _num(b)
        if op in ("/", "%"):
            if _num(b) == 0:
                raise _runtime_error("/ by zero", "arithmetic_exception")
            if op == "%":
                return _num(a) % _num(b)
            return int(a / b) if isinstance(a, int) and isinstance(b, int) else _num(a) / _num(b)
        if op == "==":
            return bool(a == b)
        if op == "!=":
            return bool(a != b)
        comparisons: dict[str, Callable[[Any, Any], bool]] = {
            "<": lambda x, y: x < y, ">": lambda x, y: x > y, "<=": lambda x, y: x <= y, ">=": lambda x, y: x >= y}
        return comparisons[op](_num(a), _num(b))

    def eval(self, node: Node) -> Any:
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "var":
            return self.lookup(node[1])
        if kind == "list":
            return [self.eval(n) for n in node[1]]
        if kind == "map":
            return {self.eval(k): self.eval(v) for k, v in node[1]}
        if kind == "new":
            if node[1] in ("ArrayList", "HashSet", "LinkedList"):
                return list(self.eval(node[2][0])) if node[2] else []
            if node[1] in ("HashMap", "LinkedHashMap", "TreeMap"):
                return dict(self.eval(node[2][0])) if node[2] else {}
            raise _compile_error(f"cannot instantiate [{node[1]}]")
        if kind == "not":
            return not _truthy(self.eval(node[1]))
        if kind == "neg":
            return -_num(self.eval(node[1]))
        if kind == "cond":
            return self.eval(node[2]) if _truthy(self.eval(node[1])) else self.eval(node[3])
        if kind == "instanceof":
            return _instanceof(self.eval(node[1]), node[2])
        if kind == "bin":
            op = node[1]
            if op == "&&":
                return _truthy(self.eval(node[2])) and _truthy(self.eval(node[3]))
            if op == "||":
                return _truthy(self.eval(node[2])) or _truthy(self.eval(node[3]))
            return self.binop(op, self.eval(node[2]), self.eval(node[3]))
        if kind == "field":
            obj = self.eval(node[1])
            if obj is None:
                if node[3]:
                    return None
                raise _runtime_error(f"cannot access [{node[2]}] of null")
            if isinstance(obj, dict):
                return obj.get(node[2])
            if isinstance(obj, list) and node[2] == "length":
                return len(obj)
            raise _runtime_error(f"cannot access [{node[2]}] of a {type(obj).__name__}", "illegal_argument_exception")
        if kind == "index":
            obj = self.eval(node[1])
            key = self.eval(node[2])
            if obj is None:
                raise _runtime_error(f"cannot access [{key}] of null")
            if isinstance(obj, list):
                return obj[int(key)]
            return obj.get(key)
        if kind == "call":
            obj = self.eval(node[1])
            if obj is None:
                if node[4]:
                    return None
                raise _runtime_error(f"cannot invoke [{node[2]}] on null")
            return _call(obj, node[2], [self.eval(a) for a in node[3]])
        raise _compile_error(f"unsupported expression [{kind}]")


def _num(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _runtime_error(f"Cannot apply a numeric operator to [{value!r}]", "class_cast_exception")
    return value


def _to_str(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _call(obj: Any, name: str, args: list[Any]) -> Any:
    if isinstance(obj, list):
        list_methods: dict[str, Callable[[], Any]] = {
            "add": lambda: _add(obj, args),
            "addAll": lambda: _add_all(obj, args[0]),
            "contains": lambda: args[0] in obj,
            "size": lambda: len(obj),
            "isEmpty": lambda: not obj,
            "get": lambda: obj[int(args[0])],
            "indexOf": lambda: obj.index(args[0]) if args[0] in obj else -1,
            "clear": obj.clear,
            "removeAll": lambda: _remove_all(obj, args[0]),
            "remove": lambda: obj.pop(args[0]) if isinstance(args[0], int) else _remove_one(obj, args[0]),
            "set": lambda: obj.__setitem__(int(args[0]), args[1]),
        }
        if name in list_methods:
            return list_methods[name]()
    elif isinstance(obj, dict):
        map_methods: dict[str, Callable[[], Any]] = {
            "put": lambda: _put(obj, args[0], args[1]),
            "get": lambda: obj.get(args[0]),
            "getOrDefault": lambda: obj.get(args[0], args[1]),
            "remove": lambda: obj.pop(args[0], None),
            "containsKey": lambda: args[0] in obj,
            "keySet": lambda: list(obj.keys()),
            "values": lambda: list(obj.values()),
            "size": lambda: len(obj),
            "isEmpty": lambda: not obj,
        }
        if name in map_methods:
            return map_methods[name]()
    elif isinstance(obj, str):
        str_methods: dict[str, Callable[[], Any]] = {
            "length": lambda: len(obj), "contains": lambda: args[0] in obj,
            "startsWith": lambda: obj.startswith(args[0]), "endsWith": lambda: obj.endswith(args[0]),
            "toLowerCase": obj.lower, "toUpperCase": obj.upper, "trim": obj.strip,
            "equals": lambda: obj == args[0], "isEmpty": lambda: not obj,
            "substring": lambda: obj[int(args[0]):(int(args[1]) if len(args) > 1 else None)],
        }
        if name in str_methods:
            return str_methods[name]()
    if name == "equals":
        return obj == args[0]
    raise _runtime_error(f"dynamic method [{type(obj).__name__}, {name}/{len(args)}] not found",
                         "illegal_argument_exception")


def _add(items: list[Any], args: list[Any]) -> bool:
    if len(args) == 1:
        items.append(args[0])
    else:
        items.insert(int(args[0]), args[1])
    return True


def _add_all(items: list[Any], other: Any) -> bool:
    items.extend(other or [])
    return True


def _remove_all(items: list[Any], other: Any) -> bool:
    before = len(items)
    items[:] = [x for x in items if x not in (other or [])]
    return len(items) != before


def _remove_one(items: list[Any], value: Any) -> bool:
    if value in items:
        items.remove(value)
        return True
    return False


def _put(mapping: dict[Any, Any], key: Any, value: Any) -> Any:
    old = mapping.get(key)
    mapping[key] = value
    return old


def parse_script(spec: Any) -> tuple[str, dict[str, Any]]:
    """``script`` of a request → (source, params); stored scripts and other languages are refused."""
    if isinstance(spec, str):
        return spec, {}
    if not isinstance(spec, dict):
        raise ESError(400, "x_content_parse_exception", "[1:12] [script] failed to parse object")
    if "id" in spec:
        raise ESError(404, "resource_not_found_exception", f"unable to find script [{spec['id']}] in cluster state")
    lang = spec.get("lang", "painless")
    if lang != "painless":
        raise illegal_lang(str(lang))
    source = spec.get("source", spec.get("inline"))
    if not isinstance(source, str):
        raise ESError(400, "x_content_parse_exception", "[1:12] [script] must specify either [source] or [id]")
    params = spec.get("params") or {}
    if not isinstance(params, dict):
        raise ESError(400, "x_content_parse_exception", "[1:12] [script] params must be an object")
    return source, params


def illegal_lang(lang: str) -> ESError:
    return ESError(400, "illegal_argument_exception", f"script_lang not supported [{lang}]")


def run_update_script(spec: Any, ctx: dict[str, Any]) -> None:
    """Run an update script against ``ctx`` (``_source``, ``op``, ``_id``, ``_index`` ...), in place."""
    source, params = parse_script(spec)
    program = _Parser(source).program()
    interp = _Interp({"ctx": ctx, "params": params})
    try:
        interp.run(program)
    except _Return:
        pass
    except (IndexError, KeyError, TypeError, ValueError) as err:
        raise _runtime_error(str(err), "illegal_argument_exception") from None
