"""The district page's blueprints, one per part of the page (registered by `district.web`)."""
