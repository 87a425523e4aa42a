"""Request bodies that are not JSON: task YAML sent as it is."""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser


class YamlTextParser(BaseParser):
    """An ``application/yaml`` body as one string."""

    media_type = "application/yaml"

    def parse(self, stream, media_type=None, parser_context=None) -> str:
        try:
            return stream.read().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(f"the body is not UTF-8 text: {exc}") from None


class TextYamlParser(YamlTextParser):
    media_type = "text/yaml"


class PlainTextParser(YamlTextParser):
    media_type = "text/plain"
