"""Alias resolution: it ends, finds every reachable final address once, and names loops."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from mailhost.model.aliases import (
    MAX_DEPTH,
    MAX_TARGETS,
    Looped,
    Resolved,
    TooDeep,
    TooMany,
    describe,
    resolve,
)
from mailhost.model.names import EmailAddress

ALIASES = [EmailAddress.parse(f"a{n}@a.test") for n in range(12)]
FINALS = [EmailAddress.parse(f"f{n}@x.test") for n in range(6)]
START = ALIASES[0]
Graph = Mapping[EmailAddress, Sequence[EmailAddress]]


@st.composite
def graphs(draw: st.DrawFn) -> dict[EmailAddress, list[EmailAddress]]:
    """Some of ALIASES (always START), each with 1 to 4 targets among all addresses."""
    names = [START, *draw(st.lists(st.sampled_from(ALIASES[1:]), unique=True))]
    targets = st.lists(st.sampled_from(ALIASES + FINALS), min_size=1, max_size=4)
    return {name: draw(targets) for name in names}


def reachable(graph: Graph) -> set[EmailAddress]:
    seen, todo = {START}, [START]
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def has_cycle(graph: Graph) -> bool:
    """A cycle among the aliases reachable from START (colouring depth-first search)."""
    state: dict[EmailAddress, int] = {}

    def visit(node: EmailAddress) -> bool:
        state[node] = 1
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if state.get(target) == 1 or (target not in state and visit(target)):
                return True
        state[node] = 2
        return False

    return visit(START)


def depth(graph: Graph, node: EmailAddress = START) -> int:
    """Aliases on the longest chain from `node`; only for graphs without a cycle."""
    return 1 + max((depth(graph, t) for t in graph[node] if t in graph), default=0)


def is_path(graph: Graph, path: Sequence[EmailAddress]) -> bool:
    return path[0] == START and all(b in graph[a] for a, b in pairwise(path))


@given(graphs())
def test_resolution_ends_finds_every_final_once_and_detects_loops(graph: Graph) -> None:
    found = resolve(START, graph)
    finals = reachable(graph) - graph.keys()
    cyclic = has_cycle(graph)
    if isinstance(found, Resolved):
        assert not cyclic
        assert depth(graph) <= MAX_DEPTH
        assert len(found.targets) == len(set(found.targets))  # each once
        assert set(found.targets) == finals  # every reachable one
    elif isinstance(found, Looped):
        assert cyclic
        assert is_path(graph, found.path)
        assert found.path[-1] in found.path[:-1]
    elif isinstance(found, TooDeep):
        assert is_path(graph, found.path)
        assert len(found.path) == MAX_DEPTH + 1
        assert all(address in graph for address in found.path)
    else:
        assert isinstance(found, TooMany)
        assert len(finals) > MAX_TARGETS
    if not cyclic and depth(graph) <= MAX_DEPTH and len(finals) <= MAX_TARGETS:
        assert isinstance(found, Resolved)
    if cyclic:
        assert isinstance(found, Looped | TooDeep)


def test_a_chain_as_deep_as_the_limit_resolves_and_one_more_does_not() -> None:
    chain = {ALIASES[n]: [ALIASES[n + 1]] for n in range(MAX_DEPTH - 1)}
    chain[ALIASES[MAX_DEPTH - 1]] = [FINALS[0]]
    assert resolve(START, chain) == Resolved((FINALS[0],))
    chain[ALIASES[MAX_DEPTH - 1]] = [ALIASES[MAX_DEPTH]]
    chain[ALIASES[MAX_DEPTH]] = [FINALS[0]]
    assert resolve(START, chain) == TooDeep(tuple(ALIASES[: MAX_DEPTH + 1]))


def test_a_diamond_is_no_loop_and_its_target_is_found_once() -> None:
    a, b, c, d = ALIASES[:4]
    graph = {a: [b, c], b: [d], c: [d, FINALS[1]], d: [FINALS[0]]}
    assert resolve(a, graph) == Resolved((FINALS[0], FINALS[1]))
    graph[d] = [a]
    looped = resolve(a, graph)
    assert isinstance(looped, Looped)
    assert describe(looped.path) == "a0@a.test -> a1@a.test -> a3@a.test -> a0@a.test"


def test_a_shared_alias_met_deeper_later_is_followed_again() -> None:
    # a0 -> x directly and through a chain; x's own chain fits only from the top.
    x = ALIASES[11]
    chain = {ALIASES[n]: [ALIASES[n + 1]] for n in range(1, 5)}
    graph = {START: [x, ALIASES[1]], **chain, ALIASES[5]: [x]}
    tail = {ALIASES[6]: [ALIASES[7]], ALIASES[7]: [FINALS[0]]}
    graph |= {x: [ALIASES[6]], **tail}
    found = resolve(START, graph)
    assert isinstance(found, TooDeep)
    assert found.path[-1] == ALIASES[7]


def test_an_alias_reaching_too_many_addresses_is_refused() -> None:
    many = [EmailAddress.parse(f"r{n}@x.test") for n in range(MAX_TARGETS + 1)]
    assert resolve(START, {START: many}) == TooMany(MAX_TARGETS + 1)
