"""Access log: one JSON object per request with every documented field (or the combined format),
to stdout or a file; SIGUSR1 reopens the file after logrotate renamed it; a FIFO nobody reads
costs log lines, never a request."""

import json
import os
import signal
import tempfile
import threading
import time
import unittest

from harness import Meridian, Origin, wait_until

CONFIG = """
node: {name: edge-log}
workers: 2
admin:
  listen: "{admin}"
access_log:
  path: %(path)s
  format: %(format)s
client_ip:
  trusted_proxies: ["127.0.0.9/32"]
listeners:
  - name: public
    listen: "{listen}"
    routes:
      - {name: api, match: {path_prefix: /api/}, backend: b}
backends:
  - name: b
    regions:
      - name: r1
        location: {lat: 50.0, lon: 8.0}
        endpoints: [{address: "{o1}"}]
"""

DOCUMENTED_FIELDS = {"time", "client", "method", "host", "path", "status", "bytes_out",
               "duration_ms", "route", "backend", "region", "endpoint", "request_id"}


def config(path="stdout", fmt="json"):
    return CONFIG % {"path": path, "format": fmt}


class AccessLogTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.origin = Origin("o1").start()

    @classmethod
    def tearDownClass(cls):
        cls.origin.stop()

    def test_json_lines_have_every_spec_field(self):
        with Meridian(config(), {"o1": self.origin.address}) as m:
            with m.conn(source_address=("127.0.0.9", 0)) as c:
                r = c.request("GET", "/api/items?page=2",
                              [("X-Forwarded-For", "203.0.113.7"), ("X-Request-Id", "abc-123"),
                               ("User-Agent", "tester/1.0")], host="shop.example")
            self.assertEqual(r.status, 200)
            self.assertEqual(m.get("/nothing").status, 404)
            wait_until(lambda: len(m.access_log()) >= 2, 5, message="two access log lines")
            # Lines of different workers may come in either order.
            by_status = {e["status"]: e for e in m.access_log()}
            ok, missing = by_status[200], by_status[404]
        self.assertLessEqual(DOCUMENTED_FIELDS, set(ok), ok)
        self.assertRegex(ok["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(ok["client"], "203.0.113.7")  # settled behind the trusted proxy
        self.assertEqual((ok["method"], ok["host"], ok["path"]), ("GET", "shop.example",
                                                                  "/api/items"))
        self.assertEqual(ok["status"], 200)
        self.assertGreater(ok["bytes_out"], 100)
        self.assertGreaterEqual(ok["duration_ms"], 0)
        self.assertEqual((ok["route"], ok["backend"], ok["region"], ok["endpoint"]),
                         ("api", "b", "r1", self.origin.address))
        self.assertEqual(ok["request_id"], "abc-123")
        self.assertEqual(ok["user_agent"], "tester/1.0")
        self.assertEqual((missing["status"], missing["route"], missing["backend"]), (404, "", ""))
        self.assertEqual(len(missing["request_id"]), 0)  # no route: no upstream, no id needed

    def test_combined_format_to_a_file_and_reopen_on_sigusr1(self):
        with Meridian(config("{dir}/access.log", "combined"), {"o1": self.origin.address}) as m:
            path = os.path.join(m.dir, "access.log")
            self.assertEqual(m.get("/api/one", [("Referer", "http://r.example/")]).status, 200)
            wait_until(lambda: os.path.exists(path) and os.path.getsize(path) > 0, 5,
                       message="the log file to be written")
            with open(path) as f:
                line = f.read().splitlines()[0]
            self.assertRegex(line, r'^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] '
                                   r'"GET /api/one HTTP/1\.1" 200 \d+ "http://r\.example/" "-"$')
            # logrotate: rename, then SIGUSR1; the next lines go to a new file of the name.
            os.rename(path, path + ".1")
            m.send_signal(signal.SIGUSR1)
            wait_until(lambda: os.path.exists(path), 5, message="the log file to be reopened")
            self.assertEqual(m.get("/api/two").status, 200)
            wait_until(lambda: "/api/two" in open(path).read(), 5,
                       message="the line after the rotation in the new file")
            self.assertNotIn("/api/two", open(path + ".1").read())

    def test_fifo_nobody_reads_does_not_stall_requests(self):
        fifo_dir = tempfile.mkdtemp(prefix="meridian-fifo-")
        fifo = os.path.join(fifo_dir, "log.fifo")
        os.mkfifo(fifo)
        # A reader that opens the FIFO and never reads: the pipe fills (64 KiB), then every
        # write would block.
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            with Meridian(config(fifo), {"o1": self.origin.address}) as m:
                done = []

                def load():
                    with m.conn() as c:
                        for i in range(3000):
                            # Long paths: 3000 lines are more than a worker's 1 MiB ring
                            # and the 64 KiB pipe hold together.
                            r = c.request("GET", f"/api/fifo/{i}/{'x' * 400}")
                            done.append(r.status)
                t = threading.Thread(target=load)
                t.start()
                t.join(120)
                self.assertFalse(t.is_alive(), "requests stalled behind the access log")
                self.assertEqual(len(done), 3000)
                self.assertEqual(set(done), {200})
                # More lines than the pipe and the rings hold: some were dropped, and counted.
                wait_until(lambda: m.metric("meridian_access_log_dropped_total") > 0, 10,
                           message="dropped lines to be counted")
        finally:
            os.close(reader)
            os.unlink(fifo)
            os.rmdir(fifo_dir)


if __name__ == "__main__":
    unittest.main()
