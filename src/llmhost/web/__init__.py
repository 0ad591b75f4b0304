"""The web dashboard's assets (Jinja2 templates, static JS/CSS, the vendored chart library) and the small pure
helpers its pages need."""
