#!/usr/bin/env python3
"""The back office in a real browser (headless Chromium over WebDriver).

    backoffice.py BASE_URL OUTPUT_DIR AXE_JS

Against a running server on a fresh database: an owner signs in with the
keyboard, creates a product with two variants and a tier, a customer, a
quotation (watching the live price preview), sends, accepts and converts it,
pays and ships the order, and watches an open dashboard change without a
reload. A viewer sees no write action, a sales user cannot adjust stock, a
POST without the CSRF token changes nothing, another tenant's ids are 404
pages. Every page visited is checked: no console error, no failed request,
no request to another host, no serious or critical axe-core violation; and a
screenshot of it is kept as OUTPUT_DIR/<page>.png.
"""

import json
import pathlib
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

BASE = sys.argv[1].rstrip("/")
OUT = pathlib.Path(sys.argv[2])
AXE = pathlib.Path(sys.argv[3]).read_text()
OUT.mkdir(parents=True, exist_ok=True)
HOST = urllib.parse.urlsplit(BASE).netloc
# Generous: CI may run three times slower than a workstation.
PATIENCE = 30.0


def api(method, path, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(BASE + path, data=data, method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, (json.loads(raw) if raw else None)


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def wait_for(what, check):
    deadline = time.monotonic() + PATIENCE
    while True:
        try:
            value = check()
        except (NoSuchElementException, StaleElementReferenceException):
            # The page is being replaced by the next one.
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("gave up waiting for " + what)
        time.sleep(0.1)


class Browser:
    """One Chromium with its own profile, and the checks every page passes."""

    def __init__(self, who):
        self.who = who
        self.profile = tempfile.TemporaryDirectory()
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--window-size=1280,1000",
            "--user-data-dir=" + self.profile.name,
        ]:
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        self.driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        self.driver.set_page_load_timeout(PATIENCE)
        self.pages = 0

    def close(self):
        self.driver.quit()
        self.profile.cleanup()

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def finds(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def button(self, text):
        for button in self.finds("button"):
            if button.text.strip() == text:
                return button
        raise AssertionError(f"no button {text!r} on {self.driver.current_url}")

    def has_text(self, text):
        return text in self.driver.page_source

    def fill(self, field_id, value):
        element = self.find("#" + field_id)
        element.clear()
        element.send_keys(value)

    def visit(self, path, name, status_ok=True):
        self.driver.get(BASE + path)
        self.check(name, status_ok)

    def settle(self, path_prefix):
        wait_for("a page under " + path_prefix,
                 lambda: urllib.parse.urlsplit(self.driver.current_url).path.startswith(path_prefix)
                 and self.driver.execute_script("return document.readyState") == "complete")

    def check(self, name, status_ok=True):
        """The page now shown: axe-core clean, no console error, every
        request answered and to this server only; then its screenshot."""
        self.pages += 1
        driver = self.driver
        wait_for("the page to load", lambda: driver.execute_script("return document.readyState") == "complete")
        # Hold a self-refreshing page still while axe-core reads it.
        driver.execute_script(
            "document.querySelectorAll('[data-refresh]').forEach(e => e.removeAttribute('data-refresh'))")
        driver.execute_script(AXE)
        violations = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']})"
            ".then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
            " nodes: v.nodes.map(n => n.html).slice(0, 3)}))))"
            ".catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));")
        bad = [v for v in violations if v["impact"] in ("serious", "critical")]
        expect(not bad, f"{self.who} {name}: axe-core violations {json.dumps(bad, indent=1)}")
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        if not status_ok:
            # The page itself answered 4xx on purpose: only that line is expected.
            errors = [e for e in errors if "the server responded with a status of 4" not in e["message"]]
        expect(not errors, f"{self.who} {name}: console errors {errors}")
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            params = message.get("params", {})
            if message["method"] == "Network.requestWillBeSent":
                url = params["request"]["url"]
                # Only the network counts: Chromium's own chrome:// pages and
                # data: URLs reach no host.
                if urllib.parse.urlsplit(url).scheme in ("http", "https", "ws", "wss"):
                    expect(urllib.parse.urlsplit(url).netloc == HOST,
                           f"{self.who} {name}: a request to another host: {url}")
            elif message["method"] == "Network.loadingFailed":
                expect(params.get("canceled"), f"{self.who} {name}: a request failed: {params}")
            elif message["method"] == "Network.responseReceived":
                response = params["response"]
                document = params.get("type") == "Document"
                expect(response["status"] < 400 or (document and not status_ok),
                       f"{self.who} {name}: {response['url']} answered {response['status']}")
        driver.save_screenshot(str(OUT / f"{name}.png"))

    def tab_to(self, describe, predicate, limit=80):
        """Presses Tab until the focused element is the one wanted: what a
        keyboard-only user does."""
        for _ in range(limit):
            active = self.driver.switch_to.active_element
            if predicate(active):
                return active
            active.send_keys(Keys.TAB)
        raise AssertionError(f"Tab never reached {describe} on {self.driver.current_url}")

    def tab_to_id(self, element_id):
        return self.tab_to("#" + element_id, lambda e: e.get_attribute("id") == element_id)

    def tab_to_button(self, text):
        return self.tab_to(f"the button {text!r}",
                           lambda e: e.tag_name == "button" and e.text.strip() == text)

    def sign_in_with_keyboard(self, email, password):
        self.driver.get(BASE + "/admin/login")
        self.check(f"{self.who}-login")
        # The e-mail field has the focus; the rest is Tab and Enter.
        active = self.driver.switch_to.active_element
        expect(active.get_attribute("id") == "email", "the e-mail field has the focus")
        active.send_keys(email, Keys.TAB, password, Keys.ENTER)
        self.settle("/admin")
        wait_for("the dashboard", lambda: self.finds("#dashboard"))


def main():
    run = uuid.uuid4().hex[:8]
    status, owner = api("POST", "/api/v1/auth/signup", {
        "company_name": "Browser Co", "name": "Owner",
        "email": f"owner-{run}@browser.example", "password": "correct horse"})
    expect(status == 201, f"signup: {status} {owner}")
    token = owner["access_token"]
    for role in ("viewer", "sales"):
        status, body = api("POST", "/api/v1/users", {
            "email": f"{role}-{run}@browser.example", "name": role.title(),
            "password": "password-123", "role": role}, token)
        expect(status == 201, f"user {role}: {status} {body}")

    b = Browser("owner")
    try:
        b.sign_in_with_keyboard(f"owner-{run}@browser.example", "correct horse")
        b.check("owner-dashboard")

        # A product with two variants and a tier.
        b.visit("/admin/products/new", "owner-product-new")
        for field, value in [
            ("f-name", "Browser hoodie"), ("f-option0_name", "Size"), ("f-option0_values", "S, M"),
            ("f-v0_sku", f"BH-S-{run}"), ("f-v0_price", "19.99"), ("f-v0_cost", "8"),
            ("f-v0_stock", "40"), ("f-v0_option0", "S"), ("f-v0_tier_min", "10"),
            ("f-v0_tier_price", "17.50"), ("f-v1_sku", f"BH-M-{run}"), ("f-v1_price", "21.99"),
            ("f-v1_stock", "5"), ("f-v1_option0", "M"),
        ]:
            b.fill(field, value)
        b.button("Create product").click()
        b.settle("/admin/products/")
        b.check("owner-product")
        expect(b.has_text("10+ at $17.50"), "the tier is shown")
        product_id = b.driver.current_url.rstrip("/").rsplit("/", 1)[1]
        status, product = api("GET", f"/api/v1/products/{product_id}", token=token)
        small = next(v for v in product["variants"] if v["sku"] == f"BH-S-{run}")

        # Stock adjustment and share link on the product page.
        b.fill("f-delta", "2")
        b.fill("f-reason", "found in the back room")
        b.button("Adjust stock").click()
        b.settle("/admin/products/")
        b.check("owner-product-adjusted")
        b.button("Create a share link").click()
        b.settle("/admin/products/")
        wait_for("the share link", lambda: b.finds("#share-links"))

        # A customer, with a wallet credit.
        b.visit("/admin/customers/new", "owner-customer-new")
        b.fill("f-name", "Ada Browser")
        b.fill("f-email", f"ada-{run}@browser.example")
        b.button("Create customer").click()
        b.settle("/admin/customers/")
        b.check("owner-customer")
        b.fill("f-amount", "500")
        b.button("Credit the wallet").click()
        b.settle("/admin/customers/")
        wait_for("the balance", lambda: b.find("#wallet-balance").text == "$500.00")

        # A quotation, with the live preview from the pricing engine.
        b.visit("/admin/quotations/new", "owner-quotation-new")
        Select(b.find("#f-customer_id")).select_by_visible_text("Ada Browser")
        Select(b.find("#f-line-0")).select_by_value(small["id"])
        b.fill("f-quantity-0", "10")
        wait_for("the price preview", lambda: b.finds("#preview-total") and b.find("#preview-total").text == "$175.00")
        b.check("owner-quotation-preview")
        b.button("Create quotation").click()
        b.settle("/admin/quotations/")
        b.check("owner-quotation")
        for action, status_text in [("Send", "sent"), ("Accept", "accepted")]:
            b.button(action).click()
            wait_for(status_text, lambda: b.find("#quotation-status").text == status_text)
        b.check("owner-quotation-accepted")
        b.button("Convert to an order").click()
        b.settle("/admin/orders/")
        b.check("owner-order")
        expect(b.find("#total").text == "$175.00", "the order keeps the quotation's prices")
        for action, status_text in [("Mark paid", "paid"), ("Mark shipped", "shipped")]:
            b.button(action).click()
            wait_for(status_text, lambda: b.find("#order-status").text == status_text)
        b.check("owner-order-shipped")

        # The same with the keyboard alone: the skip link comes first, then
        # a form is filled and sent, and an order moved, by Tab and Enter.
        order_path = urllib.parse.urlsplit(b.driver.current_url).path
        b.driver.get(BASE + order_path)
        first = b.tab_to("the first focusable element", lambda e: e.tag_name == "a")
        expect(first.text == "Skip to the content", f"the first Tab stop is the skip link, not {first.text!r}")
        b.tab_to_button("Mark delivered").send_keys(Keys.ENTER)
        wait_for("delivered", lambda: b.find("#order-status").text == "delivered")
        b.visit("/admin/customers/new", "owner-customer-new-keyboard")
        b.tab_to_id("f-name").send_keys("Kay Board", Keys.TAB, f"kay-{run}@browser.example", Keys.ENTER)
        b.settle("/admin/customers/")
        wait_for("the new customer's page", lambda: b.find("h1").text == "Kay Board")
        b.tab_to_id("f-amount").send_keys("25", Keys.ENTER)
        wait_for("the keyboard's credit", lambda: b.find("#wallet-balance").text == "$25.00")
        b.check("owner-customer-keyboard")

        # An open dashboard changes without a reload.
        # Not checked yet: a checked page stops refreshing.
        b.driver.get(BASE + "/admin")
        # The figures refresh themselves: read them through wait_for, which
        # looks again when the element was just replaced.
        before = wait_for("the month's revenue", lambda: b.find("#month-revenue").text)
        customer_id = api("GET", "/api/v1/customers?limit=1", token=token)[1]["items"][0]["id"]
        status, order = api("POST", "/api/v1/orders", {
            "customer_id": customer_id, "payment_method": "invoice",
            "items": [{"variant_id": small["id"], "quantity": 1}]}, token)
        expect(status == 201, f"order: {status} {order}")
        wait_for("the dashboard to change", lambda: b.find("#month-revenue").text != before)
        expect(b.driver.execute_script("return performance.getEntriesByType('navigation').length") == 1,
               "no reload")
        b.check("owner-dashboard-after")

        for path, name in [("/admin/customers", "owner-customers"), ("/admin/products", "owner-products"),
                           ("/admin/quotations", "owner-quotations"), ("/admin/orders", "owner-orders"),
                           ("/admin/orders?status=shipped", "owner-orders-shipped"),
                           ("/admin/reports", "owner-reports"), ("/admin/settings", "owner-settings")]:
            b.visit(path, name)

        # A POST without the CSRF token changes nothing.
        b.visit("/admin/customers", "owner-customers-again")
        answer = b.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch('/admin/customers', {method: 'POST', credentials: 'same-origin',"
            " headers: {'content-type': 'application/x-www-form-urlencoded'}, body: 'name=Mallory'})"
            ".then(r => done(r.status), e => done(String(e)));")
        expect(answer == 403, f"a POST without the token: {answer}")
        b.driver.get_log("performance")
        b.driver.get_log("browser")
        names = [c["name"] for c in api("GET", "/api/v1/customers", token=token)[1]["items"]]
        expect("Mallory" not in names, "nothing was created")

        # Another tenant's ids are 404 pages.
        status, other = api("POST", "/api/v1/auth/signup", {
            "company_name": "Other Co", "name": "Other", "email": f"other-{run}@browser.example",
            "password": "correct horse"})
        status, theirs = api("POST", "/api/v1/customers", {"name": "Not yours"}, other["access_token"])
        b.visit(f"/admin/customers/{theirs['id']}", "owner-other-tenant", status_ok=False)
        expect(b.find("h1").text == "Not found", "another tenant's customer is a 404 page")
    finally:
        b.close()

    viewer = Browser("viewer")
    try:
        viewer.sign_in_with_keyboard(f"viewer-{run}@browser.example", "password-123")
        viewer.check("viewer-dashboard")
        expect(not viewer.finds("a[href='/admin/settings']"), "a viewer has no settings")
        viewer.visit("/admin/customers", "viewer-customers")
        expect(not viewer.has_text("New customer"), "a viewer creates no customer")
        viewer.visit(f"/admin/products/{product_id}", "viewer-product")
        expect(not viewer.has_text("Adjust stock") and not viewer.has_text("Create a share link"),
               "a viewer sees no write action on a product")
        viewer.visit(f"/admin/customers/{customer_id}", "viewer-customer")
        expect(not viewer.has_text("Credit the wallet") and not viewer.has_text("Save changes"),
               "a viewer sees no write action on a customer")
    finally:
        viewer.close()

    sales = Browser("sales")
    try:
        sales.sign_in_with_keyboard(f"sales-{run}@browser.example", "password-123")
        sales.visit(f"/admin/products/{product_id}", "sales-product")
        expect(not sales.has_text("Adjust stock"), "sales cannot adjust stock")
        expect(sales.has_text("Create a share link"), "sales shares products")
        sales.visit("/admin/quotations/new", "sales-quotation-new")
        sales.visit("/admin/reports", "sales-reports")
    finally:
        sales.close()

    total = b.pages + viewer.pages + sales.pages
    print(f"browser: {total} pages checked, screenshots in {OUT}")


if __name__ == "__main__":
    main()
