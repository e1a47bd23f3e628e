"""Kernel input parsers against the kernel's edge cases (mm/page_counter.c
page_counter_memparse, lib/kstrtox.c, lib/cmdline.c, lib/bitmap-str.c)."""

import errno

import pytest
from hypothesis import given, strategies as st

from pseudofs import kparse
from pseudofs.errors import ModelError

PCMAX = (2**63 - 1) // 4096


def err(fn, *args):
    with pytest.raises(ModelError) as info:
        fn(*args)
    return info.value.errno


# --- simple_strtoull / memparse ---------------------------------------------------------------

@pytest.mark.parametrize("text, value, rest", [
    ("0", 0, ""), ("123abc", 123, "abc"), ("0x10", 16, ""), ("0X1f", 31, ""), ("010", 8, ""),
    ("09", 0, "9"), ("0x", 0, "x"), ("0xg", 0, "xg"), ("", 0, ""), ("-1", 0, "-1"),
    ("+1", 0, "+1"), (" 1", 0, " 1"), (str(2**64), 0, ""), (str(2**64 + 5), 5, ""),
    ("0x1ffffffffffffffff", 2**64 - 1, ""),
])
def test_simple_strtoull(text, value, rest):
    assert kparse.simple_strtoull(text) == (value, rest)


def test_simple_strtoull_explicit_base():
    assert kparse.simple_strtoull("0x1f", 16) == (31, "")
    assert kparse.simple_strtoull("0xg", 16) == (0, "g")   # prefix skipped, no digits
    assert kparse.simple_strtoull("777", 8) == (511, "")


@pytest.mark.parametrize("text, value, rest", [
    ("1K", 1024, ""), ("1k", 1024, ""), ("2M", 2 << 20, ""), ("1G", 1 << 30, ""),
    ("1t", 1 << 40, ""), ("1P", 1 << 50, ""), ("1e", 1 << 60, ""), ("k", 0, ""),
    ("1KK", 1024, "K"), ("5000", 5000, ""), ("1X", 1, "X"), ("0x1e", 30, ""),  # e is hex
    ("16E", 0, ""), ("17E", 1 << 60, ""),   # the shifts wrap modulo 2**64
    ("1\u212a", 1, "\u212a"),               # KELVIN SIGN lowercases to k; not a suffix
])
def test_memparse(text, value, rest):
    assert kparse.memparse(text) == (value, rest)


def test_parse_size():
    assert kparse.parse_size("64") == 64
    assert kparse.parse_size("2M") == 2 << 20
    for bad in ("", "1.5G", "1 K", "-1", "max", "1KB"):
        assert err(kparse.parse_size, bad) == errno.EINVAL


# --- page_counter_memparse ------------------------------------------------------------------

@pytest.mark.parametrize("text, pages", [
    ("5000", 1), ("5000\n", 1), ("  4096  ", 1), ("4095", 0), ("", 0), ("\n", 0), ("k", 0),
    ("0x10", 0), ("0x1000", 1), ("010000", 1), ("1G", 262144), ("1g\n", 262144),
    ("max", PCMAX), ("max\n", PCMAX), (str(2**64), 0), (str(2**64 + 8192), 2),
    ("8E", PCMAX), (str(2**64 - 1), PCMAX),
])
def test_page_counter_memparse(text, pages):
    assert kparse.page_counter_memparse(text) == pages


@pytest.mark.parametrize("text", ["-1", "+1", "1GG", "1 G", "junk", "12Q", "maximum", "Max",
                                  "1.5G", "max max", "09"])
def test_page_counter_memparse_einval(text):
    assert err(kparse.page_counter_memparse, text) == errno.EINVAL


def test_page_counter_memparse_page_size_and_max_string():
    assert kparse.page_counter_memparse("64K", page_size=65536) == 1
    assert kparse.page_counter_memparse("max", page_size=65536) == (2**63 - 1) // 65536
    assert kparse.page_counter_memparse("none", max_str="none") == PCMAX
    assert kparse.page_counter_memparse(b"8192\n") == 2
    assert kparse.page_counter_memparse("8192\0junk") == 2   # a C string ends at NUL


# --- kstrtox --------------------------------------------------------------------------------

@pytest.mark.parametrize("text, value", [
    ("0", 0), ("42", 42), ("42\n", 42), ("+42", 42), ("0x2a", 42), ("0X2A", 42), ("052", 42),
    (str(2**64 - 1), 2**64 - 1), ("0xffffffffffffffff", 2**64 - 1),
])
def test_kstrtoull(text, value):
    assert kparse.kstrtoull(text) == value


@pytest.mark.parametrize("text, code", [
    ("", errno.EINVAL), ("\n", errno.EINVAL), ("-1", errno.EINVAL), ("42\n\n", errno.EINVAL),
    ("42 ", errno.EINVAL), (" 42", errno.EINVAL), ("4x", errno.EINVAL), ("++1", errno.EINVAL),
    ("09", errno.EINVAL), ("0x", errno.EINVAL), (str(2**64), errno.ERANGE),
    ("0x10000000000000000", errno.ERANGE), (str(2**64) + "x", errno.ERANGE),
])
def test_kstrtoull_errors(text, code):
    assert err(kparse.kstrtoull, text) == code


def test_kstrtoull_explicit_base():
    assert kparse.kstrtoull("ff", 16) == 255
    assert kparse.kstrtoull("0xff", 16) == 255
    assert kparse.kstrtoull("010", 10) == 10
    assert err(kparse.kstrtoull, "0x10", 10) == errno.EINVAL


@pytest.mark.parametrize("text, value", [
    ("0", 0), ("-1", -1), ("+7\n", 7), ("-0x10", -16), ("-010", -8), ("-0", 0),
    (str(2**31 - 1), 2**31 - 1), (str(-2**31), -2**31),
])
def test_kstrtoint(text, value):
    assert kparse.kstrtoint(text) == value


@pytest.mark.parametrize("text, code", [
    (str(2**31), errno.ERANGE), (str(-2**31 - 1), errno.ERANGE), (str(2**64), errno.ERANGE),
    ("--1", errno.EINVAL), ("-+1", errno.EINVAL), ("+-1", errno.EINVAL), ("", errno.EINVAL),
    ("-", errno.EINVAL), ("1.0", errno.EINVAL), ("one", errno.EINVAL),
])
def test_kstrtoint_errors(text, code):
    assert err(kparse.kstrtoint, text) == code


def test_kstrtoll_and_kstrtouint_limits():
    assert kparse.kstrtoll(str(-2**63)) == -2**63
    assert err(kparse.kstrtoll, str(2**63)) == errno.ERANGE
    assert err(kparse.kstrtoll, str(-2**63 - 1)) == errno.ERANGE
    assert kparse.kstrtouint(str(2**32 - 1)) == 2**32 - 1
    assert err(kparse.kstrtouint, str(2**32)) == errno.ERANGE


@pytest.mark.parametrize("text", ["1", "1\n", "y", "Y", "yes", "t", "true", "T", "on", "ON",
                                  "oN", "e", "enabled", "E", "1junk"])
def test_kstrtobool_true(text):
    assert kparse.kstrtobool(text) is True


@pytest.mark.parametrize("text", ["0", "0\n", "n", "N", "no", "f", "false", "F", "off", "OFF",
                                  "d", "disabled", "D", "0junk"])
def test_kstrtobool_false(text):
    assert kparse.kstrtobool(text) is False


@pytest.mark.parametrize("text", ["", "\n", "2", "o", "o\n", "ox", " 1", "-1", "x", "\0"])
def test_kstrtobool_einval(text):
    assert err(kparse.kstrtobool, text) == errno.EINVAL


# --- cpulists -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, cpus", [
    ("", set()), ("\n", set()), ("0", {0}), ("0-3,8,10-11", {0, 1, 2, 3, 8, 10, 11}),
    ("0-3\n", {0, 1, 2, 3}), (" 1 , 3 ", {1, 3}), ("1 3", {1, 3}), (",,2,", {2}),
    ("3-3", {3}), ("0-7:2/4", {0, 1, 4, 5}), ("0-1023:2/256", {0, 1, 256, 257, 512, 513, 768,
                                                               769}),
    ("0\n5", {0}),                 # a newline ending a region ends the list
    ("0,\n5", {0, 5}),             # ... but is skipped like a space between regions
    ("0-3:1/2,5", {0, 2, 5}),
])
def test_parse_cpulist(text, cpus):
    assert kparse.parse_cpulist(text) == frozenset(cpus)


def test_parse_cpulist_width():
    assert kparse.parse_cpulist("all", 4) == frozenset(range(4))
    assert kparse.parse_cpulist("ALL:1/2", 4) == frozenset({0, 2})
    assert kparse.parse_cpulist("2-N", 6) == frozenset(range(2, 6))
    assert err(kparse.parse_cpulist, "0-4", 4) == errno.ERANGE
    assert err(kparse.parse_cpulist, "N") == errno.EINVAL     # no width given
    assert err(kparse.parse_cpulist, "all") == errno.EINVAL


@pytest.mark.parametrize("text, code", [
    ("3-1", errno.EINVAL), ("1-", errno.EINVAL), ("-1", errno.EINVAL), ("a", errno.EINVAL),
    ("1-2-3", errno.EINVAL), ("0-3:0/0", errno.EINVAL), ("0-3:3/2", errno.EINVAL),
    ("0-3:1", errno.EINVAL), ("0-3/2", errno.EINVAL), ("1;2", errno.EINVAL),
    ("0-3:1/2x", errno.EINVAL), ("4294967296", errno.EOVERFLOW),
    ("99999999999999999999", errno.EOVERFLOW),
])
def test_parse_cpulist_errors(text, code):
    assert err(kparse.parse_cpulist, text) == code


@pytest.mark.parametrize("cpus, text", [
    (set(), ""), ({0}, "0"), ({0, 1}, "0-1"), ({0, 1, 2, 3, 8, 10, 11}, "0-3,8,10-11"),
    ({5, 3, 4}, "3-5"), ({1, 3, 5}, "1,3,5"),
])
def test_format_cpulist(cpus, text):
    assert kparse.format_cpulist(cpus) == text


@given(st.frozensets(st.integers(0, 300)))
def test_cpulist_round_trip(cpus):
    assert kparse.parse_cpulist(kparse.format_cpulist(cpus)) == cpus


# --- control lines --------------------------------------------------------------------------

ALLOC_KEYS = {"size", "count", "align", "cgroup", "tag", "account"}


def test_parse_control():
    line = "size=64 count=1000\tcgroup=/app \n"
    assert kparse.parse_control(line, ALLOC_KEYS) == {
        "size": "64", "count": "1000", "cgroup": "/app"}
    assert list(kparse.parse_control("tag=a size=1K")) == ["tag", "size"]   # order kept
    assert kparse.parse_control("tag=a=b") == {"tag": "a=b"}
    assert kparse.parse_control("  \n") == {}
    assert kparse.parse_control(b"all\n", {"tag"}, flags={"all"}) == {"all": True}
    assert kparse.parse_control("size=8\0count=junk") == {"size": "8"}


@pytest.mark.parametrize("line, allowed, flags", [
    ("size=64 size=32", None, ()), ("all all", None, {"all"}),
    ("size=64 colour=red", ALLOC_KEYS, ()), ("all", ALLOC_KEYS, ()), ("size", None, ()), ("size=", None, ()), ("=64", None, ()),
    ("size=64 count", None, ()), ("x" * 4097, None, {"x" * 4097}),
])
def test_parse_control_einval(line, allowed, flags):
    assert err(kparse.parse_control, line, allowed, flags) == errno.EINVAL


def test_parse_control_page_limit():
    ok = "tag=" + "x" * 4092
    assert kparse.parse_control(ok)["tag"] == "x" * 4092
    assert err(kparse.parse_control, ok + "x") == errno.EINVAL
