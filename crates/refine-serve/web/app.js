// The web view: filled in by the web-view work.
