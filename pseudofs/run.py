"""`pseudofs run [-c CONFIG] [--accounting MODE] [--faults PLAN] -- CMD [ARGS...]`: mount the
model on a temporary mountpoint, run CMD through `pseudofs exec` (the model's files bound over
/proc and /sys; $PSEUDOFS_MNT names the mountpoint), unmount, and exit with CMD's status.

Exit status: CMD's; 128+N when a signal N ended CMD (as a shell reports it); 125 when
`pseudofs run` itself failed (bad config, no mount), as `pseudofs exec` does; 126/127 when CMD
cannot be executed or is not found.
"""

import argparse
import os
import signal
import subprocess
import sys

from pseudofs.errors import ConfigError
from pseudofs.fs import supervise
from pseudofs.fs.nsexec import EXIT_FAILED


def _wait(proc: subprocess.Popen) -> int:
    """Wait for CMD; Ctrl-C reaches CMD too (same process group), so keep waiting for it."""
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:
            continue


def main(argv=None) -> int:
    from pseudofs import testing
    p = argparse.ArgumentParser(prog="pseudofs run", description=__doc__.split("\n\n")[0])
    p.add_argument("-c", "--config", help="YAML configuration (default: the built-in one)")
    p.add_argument("--accounting", choices=("per-node", "memcg"),
                   help="override the configuration's kernel.accounting")
    p.add_argument("--faults", metavar="PLAN", help="a fault plan (YAML file) for the mount")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD")
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("no command given (usage: pseudofs run [-c CONFIG] -- CMD [ARGS...])")
    try:
        with testing.mounted(args.config, accounting=args.accounting,
                             faults=args.faults) as m:
            env = dict(os.environ, PSEUDOFS_MNT=str(m.path))
            proc = subprocess.Popen(supervise.pseudofs_argv("exec", m.path, "--", *command),
                                    env=env)
            # SIGTERM (a CI timeout) ends CMD first, then the mount goes as usual
            old = signal.signal(signal.SIGTERM, lambda sig, frame: proc.terminate())
            try:
                status = _wait(proc)
            finally:
                signal.signal(signal.SIGTERM, old)
    except ConfigError as e:
        print("\n".join(e.problems), file=sys.stderr)
        return EXIT_FAILED
    except (supervise.MountError, OSError, ValueError) as e:
        print("pseudofs run: %s" % e, file=sys.stderr)
        return EXIT_FAILED
    return 128 - status if status < 0 else status
