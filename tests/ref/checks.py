"""PASS/FAIL lines and their tally, shared by the Python tests (tests/ref, tests/post); no torch,
so that the fast post-processing test can use it."""


class Checks:
    def __init__(self):
        self.passes = 0
        self.failures = 0

    def report(self, ok, what, detail=""):
        """One PASS/FAIL line; detail (e.g. the output that disagreed) is printed on failure."""
        print(("PASS " if ok else "FAIL ") + what + ("" if ok or not detail else f"\n    {detail}"),
              flush=True)
        if ok:
            self.passes += 1
        else:
            self.failures += 1

    def finish(self):
        """Prints the tally; the exit status for sys.exit."""
        print(f"{self.passes} passed, {self.failures} failed")
        return 1 if self.failures else 0
