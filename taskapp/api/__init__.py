"""The REST API (DRF): thin views over ``taskapp.services`` (writes) and
``taskapp.selectors`` (reads). See docs/api.md."""
