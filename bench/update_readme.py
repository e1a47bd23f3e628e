"""Write the output of one `make bench` run into bench/README.md, between its two markers, with
the date and the machine it ran on: the figures there are always one run's, as printed.

    python3 bench/update_readme.py BENCH_OUTPUT_FILE
"""

import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BEGIN = "<!-- make bench: begin (bench/update_readme.py writes this part) -->"
END = "<!-- make bench: end -->"


def main(argv) -> int:
    if len(argv) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        output = f.read().rstrip("\n")
    path = os.path.join(HERE, "README.md")
    with open(path) as f:
        text = f.read()
    head, sep, rest = text.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        print("bench/README.md: markers missing", file=sys.stderr)
        return 1
    block = "\n".join([
        BEGIN,
        "Run of %s on %s (%d CPUs, Linux %s, Python %s):" % (
            time.strftime("%Y-%m-%d"), platform.machine(), os.cpu_count() or 0,
            platform.release(), platform.python_version()),
        "", "```", output, "```", END])
    with open(path, "w") as f:
        f.write(head + block + tail)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
