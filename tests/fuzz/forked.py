"""The fuzz suite's harness: each case runs in a forked child, so that a crash (a signal, a hang)
is counted as an outcome instead of ending the test run."""
import os
import pickle
import signal

import torch


def in_child(function, *args, timeout: float = 60.0):
    """Run ``function(*args)`` in a forked child; returns ("ok", value), ("error", (type, message)) for
    an exception, ("crash", signal number) or ("hang", None). The child runs torch on one thread:
    GNU OpenMP's thread pool does not survive a fork, so a child's first parallel region waits
    forever once the parent has run one (as every earlier test in the session has)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        torch.set_num_threads(1)
        try:
            outcome = ("ok", function(*args))
        except BaseException as exc:  # noqa: BLE001 - every exception is reported to the parent
            outcome = ("error", (type(exc).__name__, str(exc), [c.__name__ for c in type(exc).__mro__]))
        with os.fdopen(write, "wb") as fh:
            pickle.dump(outcome, fh)
        os._exit(0)
    os.close(write)
    signal.signal(signal.SIGALRM, lambda *_: os.kill(pid, signal.SIGKILL))
    signal.setitimer(signal.ITIMER_REAL, timeout)
    with os.fdopen(read, "rb") as fh:
        data = fh.read()
    _, status = os.waitpid(pid, 0)
    signal.setitimer(signal.ITIMER_REAL, 0)
    if os.WIFSIGNALED(status):
        return ("hang", None) if os.WTERMSIG(status) == signal.SIGKILL else ("crash", os.WTERMSIG(status))
    return pickle.loads(data)
