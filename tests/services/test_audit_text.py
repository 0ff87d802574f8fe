"""The audit log in words: every action code mailhost records has a sentence, and a few
entries read as they should."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import pytest

import mailhost
from mailhost.model.records import AuditRecord
from mailhost.services.audit_text import PHRASES, describe

SRC = Path(mailhost.__file__).parent
FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


class Unresolved(Exception):
    """An action argument that is not a string literal this scanner can follow."""


def _functions(tree: ast.Module) -> dict[ast.AST, FunctionNode]:
    """Each node of the module → the innermost function it sits in."""
    owner: dict[ast.AST, FunctionNode] = {}

    def visit(node: ast.AST, function: FunctionNode | None) -> None:
        for child in ast.iter_child_nodes(node):
            if function is not None:
                owner[child] = function
            visit(child, child if isinstance(child, FunctionNode) else function)

    visit(tree, None)
    return owner


def _codes(expr: ast.expr, tree: ast.Module, owner: dict[ast.AST, FunctionNode]) -> set[str]:
    """The action codes `expr` can be: literals, both arms of `a if c else b`, a local
    variable's assigned literals, or a parameter followed to every call in the module."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return {expr.value}
    if isinstance(expr, ast.IfExp):
        return _codes(expr.body, tree, owner) | _codes(expr.orelse, tree, owner)
    function = owner.get(expr)
    if isinstance(expr, ast.Name) and function is not None:
        parameters = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
        if expr.id in parameters:
            return _from_callers(function, parameters.index(expr.id), expr.id, tree, owner)
        assigned = [
            node.value
            for node in ast.walk(function)
            if isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == expr.id for t in node.targets)
        ]
        if assigned:
            return set().union(*(_codes(value, tree, owner) for value in assigned))
    raise Unresolved(ast.unparse(expr))


def _from_callers(
    function: FunctionNode,
    index: int,
    name: str,
    tree: ast.Module,
    owner: dict[ast.AST, FunctionNode],
) -> set[str]:
    found: set[str] = set()
    bound = bool(function.args.args) and function.args.args[0].arg in ("self", "cls")
    for call in ast.walk(tree):
        if not isinstance(call, ast.Call):
            continue
        callee = call.func
        called = callee.id if isinstance(callee, ast.Name) else getattr(callee, "attr", None)
        if called != function.name:
            continue
        position = index - 1 if bound and isinstance(callee, ast.Attribute) else index
        given = [k.value for k in call.keywords if k.arg == name]
        if not given and position < len(call.args):
            given = [call.args[position]]
        if not given:
            raise Unresolved(f"{function.name}(...) called without {name}")
        found |= _codes(given[0], tree, owner)
    if not found:
        raise Unresolved(f"{function.name}: nothing calls it with {name}")
    return found


def recorded_codes() -> dict[str, set[str]]:
    """Every action code passed to `<...>.audit.record(actor, action, ...)` in src, with
    the files that record it."""
    codes: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        owner = _functions(tree)
        for call in ast.walk(tree):
            if not (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr == "record"
                and isinstance(call.func.value, ast.Attribute)
                and call.func.value.attr == "audit"
            ):
                continue
            keyword = [k.value for k in call.keywords if k.arg == "action"]
            action = keyword[0] if keyword else call.args[1]
            where = f"{path.relative_to(SRC)}:{call.lineno}"
            try:
                found = _codes(action, tree, owner)
            except Unresolved as exc:
                pytest.fail(f"{where}: cannot tell which action codes {exc} records")
            for code in found:
                codes.setdefault(code, set()).add(where)
    return codes


def test_the_scanner_finds_literal_conditional_and_passed_on_codes() -> None:
    codes = recorded_codes()
    # A literal, both arms of a conditional, and codes passed to a helper that records.
    for code in ("mailbox.remove", "customer.enable", "customer.disable", "domain.trust"):
        assert code in codes
    assert {"two_factor.on", "two_factor.recovery_codes", "two_factor.off"} <= set(codes)
    assert len(codes) >= 25


def test_every_recorded_action_code_has_a_sentence() -> None:
    missing = {code: sorted(where) for code, where in recorded_codes().items()}
    missing = {code: where for code, where in missing.items() if code not in PHRASES}
    assert not missing, f"add these to PHRASES in services/audit_text.py: {missing}"


def test_no_sentence_is_left_for_a_code_nothing_records() -> None:
    assert set(PHRASES) <= set(recorded_codes())


def entry(actor: str, action: str, target: str, detail: str = "") -> AuditRecord:
    return AuditRecord(1, datetime(2025, 1, 2, 3, 4, tzinfo=UTC), actor, action, target, 7, detail)


@pytest.mark.parametrize(
    ("record", "sentence"),
    [
        (
            entry("domain:example.test", "smtp.add", "alice@example.test", "R H120"),
            "alice@example.test: SMTP account added with R H120, by the example.test domain "
            "manager",
        ),
        (
            entry("customer:acme", "mailbox.remove", "bob@a.example"),
            "bob@a.example: POP3 mailbox removed, with its mail, by customer acme",
        ),
        (
            entry("provider:cli", "mailbox.add", "bob@a.example", "quota=250MB"),
            "bob@a.example: POP3 mailbox added with quota 250MB, by the provider (command line)",
        ),
        (
            entry(
                "provider:root",
                "plan.add",
                "Small",
                "domains=3 storage=500MB transfer=unlimited accounts=10",
            ),
            "Small: plan added with domains 3, storage 500MB, transfer unlimited, accounts 10, "
            "by provider admin root",
        ),
        (
            entry(
                "customer:acme",
                "password.reset",
                "acme",
                "by reset link; sessions ended=2 reset links cancelled=0",
            ),
            "acme: password reset (by reset link; sessions ended 2, reset links cancelled 0), "
            "by customer acme",
        ),
        (
            entry("user:alice@a.example", "app_password.add", "alice@a.example laptop"),
            "alice@a.example: app password “laptop” created, by user alice@a.example",
        ),
        (
            entry("provider:root", "customer.remove", "acme", "domains=a.example,b.example"),
            "acme: customer removed, with its domains and their mail "
            "(domains a.example, b.example), by provider admin root",
        ),
        (
            entry("customer:acme", "api_token.add", "deploy", "id=12"),
            "deploy: API token created, by customer acme",
        ),
        # A code from another version is shown as it is, not dropped.
        (
            entry("someone", "future.thing", "x", "y=1"),
            "x: future.thing (y=1), by someone",
        ),
    ],
)
def test_entries_read_as_sentences(record: AuditRecord, sentence: str) -> None:
    assert describe(record) == sentence
