#!/usr/bin/env python3
"""The layout rules of livepose's sources, checked after a build (part of `make test`):

1. No orphan source file: every `.rs` file under src/ was compiled. rustc's dep-info files
   (`<target>/debug/deps/livepose-*.d`, written by every build of the crate) list each source file a
   build read; a file that no `mod` declaration reaches is in none of them. Only dep-info newer than the
   newest source file counts (a build of the current sources), so a file orphaned since the last build
   is not hidden by an older dep-info.
2. No Rust file over 700 lines (src/, tests/, benches/, fuzz/).
3. No import circle between files: an edge is a `use` or a path (`crate::a::b`, `super::x`) from one
   file to an item of another. A parent's edges to its own descendants are not counted (a parent
   gathers its children); a circle is any other strongly connected set of files.
4. The layering rule of src/lib.rs: its doc comment lists the top-level modules in order ("each using
   only those listed before it"; modules on one line are one level); a file of one module may use a
   module of the same or a lower level only.

usage: scripts/check_layout.py [--no-build-check]   (exit 1 on a broken rule, with each file named)
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
MAX_LINES = 700


def target_dir():
    out = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps", "--offline"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return Path(json.loads(out)["target_directory"])


def compiled_sources():
    deps = target_dir() / "debug" / "deps"
    newest_src = max(p.stat().st_mtime for p in SRC.rglob("*.rs"))
    listed = set()
    fresh = 0
    for d in deps.glob("livepose-*.d"):
        if d.stat().st_mtime < newest_src:
            continue
        fresh += 1
        text = d.read_text(errors="replace")
        for token in re.split(r"(?<!\\)\s+", text):
            token = token.rstrip(":").replace("\\ ", " ")
            if token.endswith(".rs"):
                listed.add(Path(token).resolve())
    return listed, fresh


def module_of(path):
    """`src/server/socketio/mod.rs` -> ["server", "socketio"]; `src/lib.rs` -> []."""
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def file_of(module, files):
    """The file that defines `module` (a list of names), or its nearest ancestor's."""
    while module:
        key = tuple(module)
        if key in files:
            return files[key]
        module = module[:-1]
    return files.get((), None)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def test_code_removed(text):
    """Drops `#[cfg(test)] mod tests { ... }` blocks (tests may use anything)."""
    out = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "#[cfg(test)]" and i + 1 < len(lines) and re.match(r"\s*(pub(\(\w+\))? )?mod \w+ \{", lines[i + 1]):
            depth = 0
            i += 1
            while i < len(lines):
                depth += lines[i].count("{") - lines[i].count("}")
                i += 1
                if depth <= 0:
                    break
            continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


def references(path, text):
    """Module paths (lists of names) that a file refers to."""
    here = module_of(path)
    is_mod_file = path.name in ("mod.rs", "lib.rs", "main.rs")
    # `super` of a file `a/b.rs` (module a::b) is `a`; of `a/b/mod.rs` (module a::b) it is also `a`.
    refs = []
    # Expand `use x::{a, b::{c}}` groups into single paths.
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        spec = re.sub(r"\s+as\s+\w+", "", m.group(1))
        for p in expand_use(re.sub(r"\s+", "", spec)):
            refs.append(p)
    for m in re.finditer(r"(?<![\w:])((?:crate|super)(?:::\w+)+)", text):
        refs.append(m.group(1))
    out = []
    for r in refs:
        parts = r.split("::")
        if parts[0] == "crate":
            out.append(parts[1:])
        elif parts[0] == "super":
            base = here[:]
            while parts and parts[0] == "super":
                base = base[:-1]
                parts = parts[1:]
            out.append(base + parts)
        elif parts[0] == "self":
            out.append(here + parts[1:])
    return out


def expand_use(spec):
    if "{" not in spec:
        return [spec]
    head, _, rest = spec.partition("{")
    body = rest[: rest.rfind("}")]
    items, depth, cur = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    items.append(cur)
    out = []
    for item in items:
        if not item or item == "self":
            out.append(head.rstrip(":"))
            continue
        out.extend(head + p for p in expand_use(item))
    return out


def layer_order():
    """Top-level module -> level, from src/lib.rs's doc list."""
    levels = {}
    level = 0
    for line in (SRC / "lib.rs").read_text().splitlines():
        if not line.startswith("//! - "):
            continue
        names = re.findall(r"\[`(\w+)`\]", line.split(":", 1)[0])
        if names:
            for n in names:
                levels[n] = level
            level += 1
    return levels


def main():
    problems = []
    sources = sorted(p.resolve() for p in SRC.rglob("*.rs"))

    if "--no-build-check" not in sys.argv:
        listed, fresh = compiled_sources()
        if fresh == 0:
            problems.append("no dep-info of a build of the current sources: build first (cargo test)")
        else:
            for p in sources:
                if p not in listed:
                    problems.append(f"{p.relative_to(ROOT)}: orphan, no `mod` declaration reaches it (not in any build's dep-info)")

    for folder in ("src", "tests", "benches", "fuzz"):
        for p in sorted((ROOT / folder).rglob("*.rs")):
            if "target" in p.relative_to(ROOT).parts:
                continue
            n = sum(1 for _ in p.open(errors="replace"))
            if n > MAX_LINES:
                problems.append(f"{p.relative_to(ROOT)}: {n} lines (at most {MAX_LINES}): split it along its layers")

    files = {tuple(module_of(p)): p for p in sources if p.name != "main.rs"}
    edges = {p: set() for p in files.values()}
    levels = layer_order()
    for p in files.values():
        text = test_code_removed(strip_comments(p.read_text()))
        mine = module_of(p)
        for ref in references(p, text):
            target = file_of(ref, files)
            if target is None or target == p:
                continue
            target_mod = module_of(target)
            # A parent's edges into its own subtree are not imports.
            if target_mod[: len(mine)] == mine:
                continue
            edges[p].add(target)
            if mine and target_mod and mine[0] != target_mod[0]:
                a, b = mine[0], target_mod[0]
                if a in levels and b in levels and levels[b] > levels[a]:
                    problems.append(
                        f"{p.relative_to(ROOT)}: module `{a}` uses `{'::'.join(ref)}`, but `{b}` comes after "
                        f"`{a}` in src/lib.rs's order (each module uses only those listed before it)")

    # Strongly connected components (Tarjan).
    index, low, stack, on, sccs = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(comp)

    for v in edges:
        if v not in index:
            visit(v)
    for comp in sccs:
        names = ", ".join(sorted(str(p.relative_to(ROOT)) for p in comp))
        problems.append(f"import circle between: {names}")

    for line in sorted(set(problems)):
        print(f"check_layout: {line}")
    if problems:
        return 1
    print(f"check_layout: {len(sources)} source files: none orphaned, none over {MAX_LINES} lines, no import "
          f"circle, the layering of src/lib.rs holds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
