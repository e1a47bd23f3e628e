"""pseudofs command line (README, Command line): mount, umount, render, exec, run, capture,
check, bench, top, play, plot, robustness."""

import argparse
import os
import sys

from pseudofs.errors import ConfigError


def _load(config_path):
    from pseudofs.config import load_config
    return load_config(config_path)


def cmd_mount(args) -> int:
    from pseudofs.fs import daemon
    from pseudofs.fs.tree_factory import tree_factory

    # in the foreground, warnings reach the terminal directly; a daemon's reach the parent,
    # which prefixes them
    prefix = "pseudofs: warning: " if args.foreground else "warning: "
    try:
        factory = tree_factory(args.config, args.state, clock_default="live",
                               warn=lambda msg: print(prefix + msg, file=sys.stderr, flush=True))
    except ConfigError as e:             # refused before detaching
        print("\n".join(e.problems), file=sys.stderr)
        return 2
    return daemon.mount(factory, args.mountpoint, foreground=args.foreground,
                        allow_other=args.allow_other, verbose=args.verbose,
                        log_file=args.log_file, threads=args.threads,
                        entry_timeout=args.entry_timeout)


def cmd_umount(args) -> int:
    from pseudofs.fs import daemon
    return daemon.umount(args.mountpoint)


def walk(tree, path="/"):
    """Yield (path, bytes) for every readable file of the tree, depth first, sorted."""
    from pseudofs.fs.tree import Caller
    caller = Caller()
    for name in sorted(tree.readdir(path, caller)):
        child = path.rstrip("/") + "/" + name
        attr = tree.getattr(child, caller)
        if attr.is_dir:
            yield from walk(tree, child)
        elif attr.mode & 0o444:
            yield child, tree.read(tree.open(child, os.O_RDONLY, caller))


def cmd_render(args) -> int:
    from pseudofs.boot import with_clock
    from pseudofs.fs.routes import build_tree
    from pseudofs.model.procs import NoHost
    try:     # a rendered tree is a snapshot: always frozen
        tree = build_tree(with_clock(_load(args.config), "frozen", force=True), NoHost())
    except ConfigError as e:
        print("\n".join(e.problems), file=sys.stderr)
        return 2
    edit = None
    if args.faults:
        from pseudofs.faults.render import plan_editor
        try:
            edit = plan_editor(args.faults)
        except ConfigError as e:
            print("\n".join(e.problems), file=sys.stderr)
            return 2
    for path, data in walk(tree):
        if edit is not None:
            data = edit(path, data)
        out = os.path.join(args.outdir, path.lstrip("/"))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "wb") as f:
            f.write(data)
    return 0


def cmd_exec(args) -> int:
    from pseudofs.fs import nsexec
    return nsexec.run(args.mountpoint, args.command, fs_magic=args.fs_magic)


def cmd_capture(args) -> int:
    from pseudofs.capture import capture, dump
    from pseudofs.config import parse_config
    text = dump(capture(args.root, args.cgroups))
    try:
        parse_config(text, args.output or "<captured>")   # what a mount would refuse, now
    except ConfigError as e:
        print("\n".join(e.problems), file=sys.stderr)
        return 2
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


# subcommands with their own argument parsers: name -> module
OWN_PARSERS = {"run": "run", "check": "check", "bench": "bench", "top": "top", "play": "play",
               "plot": "plot", "robustness": "faults.robustness"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="pseudofs", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("mount", help="mount the model at MNT")
    m.add_argument("mountpoint", metavar="MNT")
    m.add_argument("-c", "--config", help="YAML configuration (default: the built-in one)")
    m.add_argument("--foreground", action="store_true")
    m.add_argument("--allow-other", action="store_true",
                   help="let other users in; the kernel then enforces the files' modes")
    m.add_argument("--state", metavar="FILE",
                   help="durable state: every change is logged to FILE before it returns and "
                        "replayed at the next mount (FILE's recorded config wins over -c)")
    m.add_argument("--log-file", help="where the daemon logs")
    m.add_argument("--entry-timeout", type=float, metavar="SECONDS",
                   help="how long the kernel may keep a name it looked up (default 1; "
                        "attributes and missing names are never kept)")
    m.add_argument("--threads", choices=("single", "multi"),
                   help="libfuse's loop: the one serving thread (default, measured faster "
                        "by bench/readbench.py) or a thread pool")
    m.add_argument("-v", "--verbose", action="store_true")
    m.set_defaults(fn=cmd_mount)
    u = sub.add_parser("umount", help="unmount MNT (also a stale mount)")
    u.add_argument("mountpoint", metavar="MNT")
    u.set_defaults(fn=cmd_umount)
    r = sub.add_parser("render", help="write the whole tree as plain files, without FUSE")
    r.add_argument("outdir", metavar="OUTDIR")
    r.add_argument("-c", "--config")
    r.add_argument("--faults", metavar="PLAN",
                   help="apply the content edits (mutate rules) of a fault plan file")
    r.set_defaults(fn=cmd_render)
    e = sub.add_parser("exec", help="run CMD with the model bound over /proc and /sys files")
    e.add_argument("--fs-magic", choices=("kernel", "fuse"), default="kernel",
                   help="what statfs and the mount table say for the bound paths: the kernel "
                        "filesystems they stand for (default; a supervisor answers) or FUSE")
    e.add_argument("mountpoint", metavar="MNT")
    e.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD")
    e.set_defaults(fn=cmd_exec)
    c = sub.add_parser("capture", help="write a configuration of this machine (or of --root)")
    c.add_argument("-o", "--output", metavar="FILE", help="where to write it (default: stdout)")
    c.add_argument("--cgroups", action="store_true", help="include the cgroup v2 tree")
    c.add_argument("--root", default="/", metavar="DIR",
                   help="read DIR/proc and DIR/sys instead of the machine's (a rendered tree)")
    c.set_defaults(fn=cmd_capture)
    for name in OWN_PARSERS:
        s = sub.add_parser(name, add_help=False, help=f"see `pseudofs {name} -h`")
        s.add_argument("rest", nargs=argparse.REMAINDER)
        s.set_defaults(fn=None, sub=OWN_PARSERS[name])
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in OWN_PARSERS:     # their own parsers, -h included
        import importlib
        return importlib.import_module(f"pseudofs.{OWN_PARSERS[argv[0]]}").main(argv[1:])
    args = p.parse_args(argv)
    if args.fn is None:
        import importlib
        return importlib.import_module(f"pseudofs.{args.sub}").main(args.rest)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
