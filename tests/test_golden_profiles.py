"""Golden files per kernel profile: the golden config (tests/golden/config.yaml) rendered with
`kernel.version` set to each LTS line, in both accounting modes, default options.

tests/golden/<version>/<mode>/ holds the files whose bytes differ from the 7.0 golden file of
the same mode (tests/golden/<mode>/), and tests/golden/<version>/<mode>.attrs every entry's
attributes; every other rendered file must equal the 7.0 golden file byte for byte. So each
profile's whole tree is pinned without copying what is the same. `pytest --update-golden`
rewrites them (review the diff)."""

import os
import shutil

import pytest

from pseudofs.cli import walk
from test_golden import GOLDEN, HINT, MODES, _diff, attributes, build, files_under, golden_files

VERSIONS = ("5.10", "5.15", "6.1", "6.6", "6.12", "6.18")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("version", VERSIONS)
def test_golden_profile(version, mode, request):
    tree = build(mode, version)
    got = dict(walk(tree))
    attrs = "".join(attributes(tree))
    base7 = golden_files(mode)
    own_dir = os.path.join(GOLDEN, version, mode)
    attrs_path = os.path.join(GOLDEN, version, mode + ".attrs")
    if request.config.getoption("--update-golden"):
        shutil.rmtree(own_dir, ignore_errors=True)
        for path, data in got.items():
            if base7.get(path) != data:
                out = os.path.join(own_dir, path.lstrip("/"))
                os.makedirs(os.path.dirname(out), exist_ok=True)
                with open(out, "wb") as f:
                    f.write(data)
        os.makedirs(os.path.dirname(attrs_path), exist_ok=True)
        with open(attrs_path, "w") as f:
            f.write(attrs)
    own = files_under(own_dir)
    if not own or not os.path.exists(attrs_path):
        pytest.fail("no golden files for %s/%s: %s" % (version, mode, HINT))
    problems = [p + ": golden file no longer rendered" for p in sorted(set(own) - set(got))]
    for path in sorted(got):
        want = own.get(path, base7.get(path))
        if want is None:
            problems.append(path + ": rendered, no golden file")
        elif want != got[path]:
            problems.append(_diff(path, want, got[path]))
    with open(attrs_path) as f:
        if f.read() != attrs:
            problems.append("attributes differ from " + attrs_path)
    assert not problems, "%s\n%s" % (HINT, "\n".join(problems[:8]))
