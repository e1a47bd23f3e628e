"""The layers, one way (docs/ARCHITECTURE.md): no import circle anywhere in the package, imports
inside functions included, and the model, the renderers, the file table and the configuration
import nothing from the filesystem layer (pseudofs.fs) nor fusepy."""

import ast
import pathlib

PKG = pathlib.Path(__file__).resolve().parent.parent / "pseudofs"


def _module(path: pathlib.Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports() -> dict:
    """{module: {imported pseudofs modules}}, from every import statement of every module."""
    mods = {_module(p): p for p in PKG.rglob("*.py")}
    graph = {}
    for name, path in mods.items():
        pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        out = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = pkg.split(".")[:len(pkg.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                targets = [base] + ["%s.%s" % (base, a.name) for a in node.names]
            else:
                continue
            out |= {t for t in targets if t in mods and t != name}
        graph[name] = out
    return graph


def test_no_import_circle():
    graph = imports()
    # a package's __init__ importing nothing, an edge into a package means its __init__
    state, path = {}, []

    def visit(n):
        state[n] = "open"
        path.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == "open":
                raise AssertionError("import circle: " + " -> ".join(path[path.index(m):] + [m]))
            if m not in state:
                visit(m)
        path.pop()
        state[n] = "done"
    for n in sorted(graph):
        if n not in state:
            visit(n)


def test_lower_layers_import_nothing_from_fs_or_fusepy():
    graph = imports()
    lower = [m for m in graph if m.startswith(("pseudofs.model", "pseudofs.render",
                                                 "pseudofs.config", "pseudofs.files",
                                                 "pseudofs.boot", "pseudofs.control",
                                                 "pseudofs.kparse"))]
    assert "pseudofs.config_check" in lower and "pseudofs.files.table" in lower
    for m in lower:
        bad = sorted(t for t in graph[m] if t.startswith("pseudofs.fs"))
        assert not bad, "%s imports %s" % (m, bad)
        src = (PKG.parent / (m.replace(".", "/") + ".py"))
        if not src.exists():
            src = PKG.parent / m.replace(".", "/") / "__init__.py"
        tree = ast.parse(src.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "fuse" not in names, m


def test_only_fuseops_imports_fusepy():
    users = []
    for path in PKG.rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        if "fuse" in names:
            users.append(_module(path))
    assert users == ["pseudofs.fs.fuseops"]
