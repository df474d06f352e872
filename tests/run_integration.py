#!/usr/bin/env python3
"""Runs the integration tests: every test_* function in tests/integration/test_*.py.

Each test gets a fresh temporary folder under build/it/ and is reported as PASS, FAIL or
SKIP with its name; the last line counts them. Pass test names (or parts of them) as
arguments to run only those. The exit status is 1 when any test failed.
"""
import importlib
import inspect
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "integration"))

import harness  # noqa: E402


def discover():
    folder = os.path.join(HERE, "integration")
    for file_name in sorted(os.listdir(folder)):
        if not (file_name.startswith("test_") and file_name.endswith(".py")):
            continue
        module = importlib.import_module(file_name[:-3])
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("test_") and function.__module__ == module.__name__:
                yield f"{module.__name__}.{name}", function, inspect.getsourcelines(function)[1]


def main(selected):
    tests = sorted(discover(), key=lambda item: (item[0].split(".")[0], item[2]))
    if selected:
        tests = [t for t in tests if any(s in t[0] for s in selected)]
    passed = failed = skipped = 0
    for name, function, _ in tests:
        started = time.monotonic()
        context = harness.TestContext(name)
        try:
            function(context)
        except harness.Skipped as skip:
            skipped += 1
            print(f"SKIP {name}: {skip}", flush=True)
        except Exception:  # noqa: BLE001 - every failure is reported, then the next test runs
            failed += 1
            print(f"FAIL {name}", flush=True)
            traceback.print_exc(file=sys.stdout)
            context.keep_on_failure()
        else:
            passed += 1
            print(f"PASS {name} ({time.monotonic() - started:.1f} s)", flush=True)
        finally:
            context.close()
    harness.remove_run_root(keep=failed > 0)
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
