"""Azure OpenAI: the OpenAI fake, addressed by resource root and deployment."""

from __future__ import annotations

from tests.fakes.openai import FakeOpenAI


class FakeAzureOpenAI(FakeOpenAI):
    """The same server; `base_url` is the resource root Azure targets are configured with."""

    wire = "azure"

    @property
    def base_url(self) -> str:
        return self.root_url
