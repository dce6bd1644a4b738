"""Java in the sandbox: ``java -version`` and a small threaded program, the same
output and status as natively.

The JVM aborted at start (``pthread_getattr_np failed with error = 3``) while
sched_getaffinity refused a thread's id.  It needs Debian's JDK (javac builds
the program natively first); where it is not installed the tests skip, saying so.
``java Hello.java`` (the single-file source launcher) is not tested: it opens a
socketpair, and the sandbox has no sockets yet.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import run_native, run_sandbox

JAVA = shutil.which("java")
JAVAC = shutil.which("javac")
needs_jdk = pytest.mark.skipif(
    JAVA is None or JAVAC is None,
    reason="no java/javac: apt-get install default-jdk-headless to run the Java tests",
)

SOURCE = """\
import java.util.*;
import java.util.concurrent.*;

public class Hello {
    public static void main(String[] args) throws Exception {
        System.out.println("hello from java " + String.join(",", args));
        ExecutorService pool = Executors.newFixedThreadPool(4);
        List<Future<Long>> parts = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            final int k = i;
            parts.add(pool.submit(() -> {
                long s = 0;
                for (int j = 0; j < 100000; j++) s += j % (k + 1);
                return s;
            }));
        }
        long total = 0;
        for (Future<Long> f : parts) total += f.get();
        pool.shutdown();
        System.out.println("sum " + total);
        Map<String, Integer> counts = new TreeMap<>();
        for (String w : "b a c a b a".split(" ")) counts.merge(w, 1, Integer::sum);
        System.out.println(counts);
        System.out.println("processors > 0 " + (Runtime.getRuntime().availableProcessors() > 0));
        System.exit(3);
    }
}
"""


@pytest.fixture(scope="module")
def hello_classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("java")
    (out / "Hello.java").write_text(SOURCE)
    proc = subprocess.run([JAVAC, "-d", str(out), str(out / "Hello.java")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return out


@needs_jdk
@pytest.mark.sandbox
def test_java_version() -> None:
    nat = run_native([JAVA, "-version"])
    box = run_sandbox([JAVA, "-version"], timeout=120)
    assert nat.returncode == 0, nat.describe()
    assert box.returncode == 0, box.describe()
    assert box.err == nat.err and "openjdk version" in box.err, box.describe()


@needs_jdk
@pytest.mark.sandbox
def test_java_program(hello_classes: Path) -> None:
    argv = [JAVA, "-cp", str(hello_classes), "Hello", "x", "y"]
    nat = run_native(argv)
    box = run_sandbox(argv, timeout=120)
    assert nat.out.startswith("hello from java x,y\nsum 1399990\n"), nat.describe()
    assert box.out == nat.out, box.describe()
    assert box.err == nat.err == "", box.describe()
    assert box.returncode == nat.returncode == 3, box.describe()
