"""Reading an ADK LlmRequest the way the runbook model needs: who asked what, which tools ran."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from google.adk.models import LlmRequest

# ADK rewrites other agents' turns as quoted user text; those are not the user speaking.
_QUOTED = re.compile(r"^\s*(For context:|\[[\w-]+\] (called tool|`[\w-]+` tool returned|said))")


@dataclass
class ToolCall:
    name: str
    args: dict[str, Any]
    response: Any = None
    answered: bool = False


@dataclass
class Conversation:
    """The parts of a request the runbook reasons about."""

    user_messages: list[str] = field(default_factory=list)  # real user texts, oldest first
    turn_calls: list[ToolCall] = field(default_factory=list)  # this agent's calls since the last user text
    history_calls: list[ToolCall] = field(default_factory=list)  # calls in earlier turns
    model_texts: list[str] = field(default_factory=list)  # earlier final answers (any agent)
    tools: set[str] = field(default_factory=set)
    instruction: str = ""

    @property
    def question(self) -> str:
        return self.user_messages[-1] if self.user_messages else ""

    def called(self, name: str) -> list[ToolCall]:
        return [call for call in self.turn_calls if call.name == name]

    def last_result(self, name: str, *, any_turn: bool = False) -> Any:
        calls = self.turn_calls + (self.history_calls if any_turn else [])
        answered = [call for call in calls if call.name == name and call.answered]
        if not answered:
            return None
        if any_turn and self.called(name):
            answered = [call for call in self.turn_calls if call.name == name and call.answered] or answered
        return answered[-1].response

    @classmethod
    def from_request(cls, request: LlmRequest) -> "Conversation":
        convo = cls(tools=set(request.tools_dict or {}))
        system = request.config.system_instruction if request.config else None
        convo.instruction = system if isinstance(system, str) else str(system or "")
        pending: dict[str, ToolCall] = {}
        current: list[ToolCall] = []
        for content in request.contents or []:
            for part in content.parts or []:
                if part.text and content.role == "user" and not part.thought:
                    if _QUOTED.match(part.text):
                        continue
                    convo.user_messages.append(part.text.strip())
                    convo.history_calls.extend(current)
                    current = []
                elif part.text and content.role == "model" and not part.thought:
                    convo.model_texts.append(part.text)
                elif part.function_call:
                    call = ToolCall(name=part.function_call.name, args=dict(part.function_call.args or {}))
                    pending[part.function_call.id or f"{call.name}-{len(current)}"] = call
                    current.append(call)
                elif part.function_response:
                    response = part.function_response
                    call = pending.pop(response.id, None) if response.id else None
                    if call is None:
                        call = next((c for c in reversed(current) if c.name == response.name and not c.answered), None)
                    if call is not None:
                        call.response = _unwrap(response.response)
                        call.answered = True
        convo.turn_calls = current
        return convo


def _unwrap(response: Any) -> Any:
    # ADK wraps non-dict tool results as {"result": ...}; JSON strings are decoded for convenience.
    if isinstance(response, dict) and set(response) == {"result"}:
        response = response["result"]
    if isinstance(response, str):
        try:
            return json.loads(response)
        except ValueError:
            return response
    return response
