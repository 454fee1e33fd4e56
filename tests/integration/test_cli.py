"""The command line: --version, --check (valid / invalid, PATH:LINE:COLUMN errors), and a
bad config refused at start-up with exit 1."""

import os
import re
import subprocess
import tempfile
import unittest

from harness import SOURCE_DIR, meridian_bin, run_meridian_check

VALID = """\
node: {name: edge-cli}
workers: 1
admin:
  listen: "127.0.0.1:0"
listeners:
  - name: public
    listen: "127.0.0.1:0"
    routes:
      - name: all
        backend: api
backends:
  - name: api
    regions:
      - name: r1
        location: {lat: 50.0, lon: 8.0}
        endpoints:
          - address: 127.0.0.1:9
"""


# The certificate pair conf/meridian.yaml names: Debian's self-signed placeholder, generated
# when the ssl-cert package is installed (tests/install-deps.sh installs it).
SNAKEOIL_CERT = "/etc/ssl/certs/ssl-cert-snakeoil.pem"
SNAKEOIL_KEY = "/etc/ssl/private/ssl-cert-snakeoil.key"


def line_col(text, needle, nth=0):
    """1-based (line, column) of the nth occurrence of `needle` in `text`."""
    pos = -1
    for _ in range(nth + 1):
        pos = text.index(needle, pos + 1)
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


ERROR_RE = re.compile(r"^(?P<path>[^\s:]+):(?P<line>\d+):(?P<col>\d+): (?P<msg>.+)$", re.M)


def run(args, cwd=None, timeout=30):
    proc = subprocess.run([meridian_bin()] + args, cwd=cwd, stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=timeout)
    return (proc.returncode, proc.stdout.decode("utf-8", "replace"),
            proc.stderr.decode("utf-8", "replace"))


class CliTest(unittest.TestCase):
    def errors(self, out, err):
        return [m.groupdict() for m in ERROR_RE.finditer(err + "\n" + out)]

    def test_version(self):
        code, out, err = run(["--version"])
        self.assertEqual(code, 0, err)
        self.assertRegex(out + err, r"\b\d+\.\d+\.\d+\b")
        self.assertIn("meridian", (out + err).lower())

    def test_check_demo_config(self):
        path = os.path.join(SOURCE_DIR, "conf", "demo.yaml")
        if not os.path.exists(path):
            self.skipTest("conf/demo.yaml does not exist yet (the lead is writing it)")
        code, out, err = run(["--check", "--config", "conf/demo.yaml"], cwd=SOURCE_DIR)
        self.assertEqual(code, 0, f"conf/demo.yaml rejected:\n{out}{err}")

    def skip_without_snakeoil(self):
        for path in (SNAKEOIL_CERT, SNAKEOIL_KEY):
            try:
                with open(path, "rb"):
                    pass
            except FileNotFoundError:
                self.skipTest(f"{path} is absent: conf/meridian.yaml names Debian's snakeoil "
                              "pair (apt-get install ssl-cert; if the package is installed "
                              "and the pair was removed: make-ssl-cert "
                              "generate-default-snakeoil)")
            except PermissionError:
                self.skipTest(f"{path} is not readable by this user (run as root or as a "
                              "member of the group ssl-cert)")

    def test_check_default_config(self):
        # conf/meridian.yaml is what `meridian` runs without --config: it must pass as shipped.
        self.skip_without_snakeoil()
        code, out, err = run(["--check", "--config", "conf/meridian.yaml"], cwd=SOURCE_DIR)
        self.assertEqual(code, 0, f"conf/meridian.yaml rejected:\n{out}{err}")
        self.assertIn("conf/meridian.yaml: ok", out)
        # Without --config, --check reads the same file.
        code, out, err = run(["--check"], cwd=SOURCE_DIR)
        self.assertEqual(code, 0, f"`meridian --check` without --config:\n{out}{err}")
        self.assertIn("conf/meridian.yaml: ok", out)

    def test_default_config_apart_from_its_certificate(self):
        # The rest of conf/meridian.yaml is checked on machines without the snakeoil pair too:
        # a copy names a stand-in file (--check only requires it to be readable).
        with open(os.path.join(SOURCE_DIR, "conf", "meridian.yaml")) as f:
            text = f.read()
        self.assertIn(SNAKEOIL_CERT, text)
        self.assertIn(SNAKEOIL_KEY, text)
        with tempfile.TemporaryDirectory(prefix="meridian-cli-") as d:
            stand_in = os.path.join(d, "stand-in.pem")
            with open(stand_in, "w") as f:
                f.write("not parsed by --check\n")
            with open(os.path.join(d, "meridian.yaml"), "w") as f:
                f.write(text.replace(SNAKEOIL_CERT, stand_in).replace(SNAKEOIL_KEY, stand_in))
            code, out, err = run(["--check", "--config", "meridian.yaml"], cwd=d)
        self.assertEqual(code, 0, f"conf/meridian.yaml rejected:\n{out}{err}")

    def test_check_valid_config(self):
        code, out, err = run_meridian_check(VALID)
        self.assertEqual(code, 0, out + err)
        self.assertEqual(self.errors(out, err), [], out + err)

    def test_check_undefined_backend(self):
        text = VALID.replace("backend: api", "backend: nope")
        code, out, err = run_meridian_check(text)
        self.assertEqual(code, 1, out + err)
        errors = self.errors(out, err)
        self.assertTrue(errors, f"no PATH:LINE:COLUMN: error line in:\n{out}{err}")
        e = errors[0]
        self.assertEqual(e["path"], "meridian.yaml")
        key_line, key_col = line_col(text, "backend: nope")
        self.assertEqual(int(e["line"]), key_line, e)
        # The column may point at the key or at the value.
        self.assertIn(int(e["col"]), (key_col, key_col + len("backend: ")), e)
        self.assertIn("nope", e["msg"])

    def test_check_rejects_route_actions_it_cannot_honour(self):
        # A route with both a backend and a redirect, a split weight of zero, and a split
        # naming a backend that does not exist: each reported at its own line and column.
        text = VALID.replace(
            "        backend: api\n",
            "        backend: api\n"
            "        redirect: {scheme: https}\n"
            "      - name: split\n"
            "        backends: [{name: api, weight: 0}, {name: ghost, weight: 5}]\n", 1)
        code, out, err = run_meridian_check(text)
        self.assertEqual(code, 1, out + err)
        errors = {(int(e["line"]), int(e["col"])): e["msg"] for e in self.errors(out, err)}
        redirect_line, redirect_col = line_col(text, "redirect: {scheme")
        weight_line, weight_col = line_col(text, "weight: 0")
        ghost_line, ghost_col = line_col(text, "name: ghost")
        self.assertIn("cannot be combined", errors.get(
            (redirect_line, redirect_col + len("redirect: ")), ""), errors)
        self.assertIn("at least 1", errors.get((weight_line, weight_col + len("weight: ")), ""),
                      errors)
        self.assertIn('backend "ghost" does not exist',
                      errors.get((ghost_line, ghost_col + len("name: ")), ""), errors)
        self.assertEqual(len(errors), 3, out + err)

    def test_check_rejects_a_mirror_to_an_unknown_backend(self):
        text = VALID.replace("        backend: api\n",
                             "        backend: api\n        mirror: {backend: shadw}\n", 1)
        code, out, err = run_meridian_check(text)
        self.assertEqual(code, 1, out + err)
        [e] = self.errors(out, err)
        line, col = line_col(text, "backend: shadw")
        self.assertEqual((int(e["line"]), int(e["col"])), (line, col + len("backend: ")), e)
        self.assertIn('backend "shadw" does not exist', e["msg"])

    def test_check_rejects_an_unknown_hash_key_kind(self):
        text = VALID.replace("  - name: api\n", "  - name: api\n    balance: maglev\n"
                             "    hash_key: query:user\n", 1)
        code, out, err = run_meridian_check(text)
        self.assertEqual(code, 1, out + err)
        [e] = self.errors(out, err)
        line, col = line_col(text, "hash_key: query:user")
        self.assertEqual((int(e["line"]), int(e["col"])), (line, col + len("hash_key: ")), e)
        self.assertIn("expected client_ip, header:NAME or cookie:NAME", e["msg"])

    def test_check_reports_every_error(self):
        text = (VALID.replace("backend: api", "backend: nope")
                .replace("lat: 50.0", "lat: 95.0")
                .replace("workers: 1", "workers: 1\nbogus_key: 3"))
        code, out, err = run_meridian_check(text)
        self.assertEqual(code, 1, out + err)
        lines = sorted(int(e["line"]) for e in self.errors(out, err))
        expected = sorted([line_col(text, "backend: nope")[0], line_col(text, "lat: 95.0")[0],
                           line_col(text, "bogus_key")[0]])
        self.assertEqual(lines, expected, out + err)

    def test_check_unknown_key(self):
        text = VALID.replace("    listen: \"127.0.0.1:0\"\n",
                             "    listen: \"127.0.0.1:0\"\n    listne: x\n", 1)
        code, out, err = run_meridian_check(text)
        self.assertEqual(code, 1, out + err)
        errors = self.errors(out, err)
        self.assertTrue(errors, out + err)
        self.assertEqual(int(errors[0]["line"]), line_col(text, "listne")[0], errors)
        self.assertIn("listne", errors[0]["msg"])

    def test_check_invalid_address(self):
        text = VALID.replace("address: 127.0.0.1:9", "address: 10.0.0.1")
        code, out, err = run_meridian_check(text)
        self.assertEqual(code, 1, out + err)
        errors = self.errors(out, err)
        self.assertTrue(errors, out + err)
        self.assertEqual(int(errors[0]["line"]), line_col(text, "10.0.0.1")[0])
        self.assertIn("address", errors[0]["msg"])

    def test_start_with_invalid_config_exits_1(self):
        with tempfile.TemporaryDirectory(prefix="meridian-cli-") as d:
            with open(os.path.join(d, "bad.yaml"), "w") as f:
                f.write(VALID.replace("backend: api", "backend: nope"))
            code, out, err = run(["--config", "bad.yaml"], cwd=d, timeout=10)
        self.assertEqual(code, 1, out + err)
        self.assertRegex(err + out, r"bad\.yaml:\d+:\d+: ")


if __name__ == "__main__":
    unittest.main()
