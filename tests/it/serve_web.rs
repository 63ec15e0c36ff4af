//! `refine serve`: the web view in a real headless Chromium, driven over WebDriver.
