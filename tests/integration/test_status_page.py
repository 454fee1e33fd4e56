"""The operator's status page (GET /ui on the admin listener, docs/admin-api.md) in a real
browser: Debian's chromium, headless, driven through chromedriver (python3-selenium), against a
running meridian with four regions of real origins. The page must load without console
errors, show the four regions, reflect a region going down within a few seconds, and carry
out a control (drain a region, after the confirmation). A screenshot is saved to
tests/artifacts/status-page.png (ignored by git)."""

import os
import re
import shutil
import sys
import tempfile
import time
import unittest

from harness import SOURCE_DIR, HttpConn, Meridian, Origin, wait_until

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.common.exceptions import StaleElementReferenceException
except ImportError:
    # Debian's python3-selenium lives in the system's dist-packages, which a python3 of
    # another installation (a pyenv one, say) does not search; the package is pure Python.
    sys.path.append("/usr/lib/python3/dist-packages")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.common.exceptions import StaleElementReferenceException

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = os.path.join(SOURCE_DIR, "tests", "artifacts")

# The demo's four regions (conf/demo.yaml), one origin each, checked every 300 ms.
REGIONS = {"us-east": (38.90, -77.04), "us-west": (45.52, -122.68), "eu-west": (53.35, -6.26),
           "ap-southeast": (1.35, 103.82)}

CONFIG = """
node: {name: edge-ui-1, location: {lat: 50.11, lon: 8.68}}
workers: 1
admin:
  listen: "{admin}"
listeners:
  - name: public
    listen: "{listen}"
    routes:
      - name: web
        backend: web
        rate_limit: {rate: 5/s, burst: 5}
backends:
  - name: web
    health_check: {path: /health, interval: 300ms, timeout: 200ms, unhealthy_threshold: 1,
                   healthy_threshold: 1}
    regions:
""" + "".join(f"""      - name: {name}
        location: {{lat: {lat}, lon: {lon}}}
        endpoints: [{{address: "{{{name}}}"}}]
""" for name, (lat, lon) in REGIONS.items())


class StatusPageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.origins = {name: Origin(name).start() for name in REGIONS}
        try:
            cls.meridian = Meridian(CONFIG, {n: o.address for n, o in cls.origins.items()}
                                    ).__enter__()
        except BaseException:
            for o in cls.origins.values():
                o.stop()
            raise
        cls.profile = tempfile.mkdtemp(prefix="meridian-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        # As root, on a machine with no network beyond loopback: no sandbox, and nothing in
        # the background that would reach out.
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1400,1100",
                    f"--user-data-dir={cls.profile}"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        try:
            cls.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        driver = getattr(cls, "driver", None)
        if driver is not None:
            driver.quit()
        shutil.rmtree(getattr(cls, "profile", ""), ignore_errors=True)
        try:
            cls.meridian.__exit__(None, None, None)
        finally:
            for o in cls.origins.values():
                o.stop()

    def url(self, path):
        return f"http://{self.meridian.admin_address}{path}"

    def row_health(self, region):
        rows = self.driver.find_elements(By.CSS_SELECTOR, f'[data-testid="region-{region}"]')
        return rows[0].get_attribute("data-health") if rows else None

    def console_errors(self):
        return [e for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]

    def test_page_shows_regions_reflects_a_failure_and_drains_a_region(self):
        # Traffic, so that the request rates and rate limit columns have something to show.
        with HttpConn(self.meridian.listen_address) as c:
            for _ in range(8):
                c.request("GET", "/x")
        self.driver.get(self.url("/ui?interval_ms=500"))
        wait_until(lambda: all(self.row_health(r) == "ok" for r in REGIONS), 10,
                   message="the four regions shown healthy", ignore=(Exception,))
        self.assertEqual(len(self.driver.find_elements(By.CSS_SELECTOR, '[data-testid^="map-region-"]')), 4)
        steering = self.driver.find_element(By.CSS_SELECTOR, '[data-testid="steering"]').text
        self.assertIn("EU", steering)
        self.assertIn("eu-west", steering)  # Europe's clients go to Dublin
        self.assertIn("web", self.driver.find_element(By.CSS_SELECTOR, '[data-testid="ratelimits"]').text)

        # A region goes down: its origin fails its health checks. The page shows it within a
        # few seconds (checks every 300 ms, the page every 500 ms).
        self.origins["eu-west"].set_health(503)
        start = time.monotonic()
        try:
            wait_until(lambda: self.row_health("eu-west") == "bad", 5,
                       message="eu-west shown down", ignore=(Exception,))
            took = time.monotonic() - start
            self.assertEqual(self.driver.find_element(
                By.CSS_SELECTOR, '[data-testid="map-region-eu-west"]').get_attribute("data-health"), "bad")
            # Europe now fails over to another region, and the page says so.
            wait_until(lambda: "failover" in self.driver.find_element(
                By.CSS_SELECTOR, '[data-testid="steering"]').text, 5,
                message="Europe shown failing over", ignore=(Exception,))
            os.makedirs(ARTIFACTS, exist_ok=True)
            shot = os.path.join(ARTIFACTS, "status-page.png")
            self.driver.save_screenshot(shot)
            self.assertGreater(os.path.getsize(shot), 10_000)
            print(f"\nregion down shown after {took:.2f} s; screenshot {shot}")
        finally:
            self.origins["eu-west"].set_health(200)
        wait_until(lambda: self.row_health("eu-west") == "ok", 5, message="eu-west back",
                   ignore=(Exception,))

        # A control: drain us-west, confirmed in the dialog. The table is redrawn every
        # poll: a button found just before a redraw is stale by the click, so find and click
        # again until one takes.
        def click_drain():
            self.driver.find_element(By.CSS_SELECTOR, '[data-testid="set-drain-us-west"]').click()
            return True
        wait_until(click_drain, 5, message="the drain button clicked",
                   ignore=(StaleElementReferenceException,))
        alert = self.driver.switch_to.alert
        self.assertIn("us-west", alert.text)
        alert.accept()
        wait_until(lambda: [r for b in self.meridian.status()["backends"] for r in b["regions"]
                            if r["name"] == "us-west"][0]["state"] == "drain", 5,
                   message="us-west drained through the page")
        wait_until(lambda: self.row_health("us-west") == "warn", 5, message="us-west shown draining",
                   ignore=(Exception,))
        self.meridian.admin("POST", "/state?backend=web&region=us-west&state=active")

        self.assertEqual(self.console_errors(), [])

    def test_page_is_self_contained_light_and_relative(self):
        with HttpConn(self.meridian.admin_address) as c:
            page = c.request("GET", "/ui")
            root = c.request("GET", "/")
        self.assertEqual(page.status, 200)
        self.assertEqual(page.header("Content-Type"), "text/html; charset=utf-8")
        self.assertEqual(root.body, page.body)
        self.assertLess(len(page.body), 200 * 1024)
        html = page.body.decode()
        # Nothing from elsewhere: no absolute URL is loaded, and fetches are relative so the
        # page works behind a reverse proxy under any prefix.
        self.assertIsNone(re.search(r'(src|href)="(https?:)?//', html))
        self.assertEqual(re.findall(r'fetch\("/', html), [])
        self.assertIn("default-src 'none'", page.header("Content-Security-Policy"))


if __name__ == "__main__":
    unittest.main()
