"""Talking to the rollout_doctor app through ADK's Runner, one session per `Chat`."""

from __future__ import annotations

from google.adk.runners import InMemoryRunner
from google.genai import types


class Chat:
    """One ADK session over the rollout_doctor app, recording what happened per turn."""

    def __init__(self, model: str | None = None):
        from agents.rollout_doctor.agent import build_app

        self.app = build_app(model)
        self.runner = InMemoryRunner(app=self.app)
        self.session_id: str | None = None

    async def ask(self, text: str) -> dict:
        if self.session_id is None:
            session = await self.runner.session_service.create_session(app_name=self.app.name, user_id="sre")
            self.session_id = session.id
        turn = {"authors": [], "calls": [], "responses": {}, "text": ""}
        message = types.Content(role="user", parts=[types.Part(text=text)])
        async for event in self.runner.run_async(user_id="sre", session_id=self.session_id, new_message=message):
            turn["authors"].append(event.author)
            for part in event.content.parts if event.content else []:
                if part.function_call:
                    turn["calls"].append((event.author, part.function_call.name, dict(part.function_call.args or {})))
                elif part.function_response:
                    turn["responses"][part.function_response.name] = part.function_response.response
                elif part.text and event.is_final_response():
                    turn["text"] = part.text
        return turn

    async def state(self) -> dict:
        session = await self.runner.session_service.get_session(
            app_name=self.app.name, user_id="sre", session_id=self.session_id)
        return dict(session.state)
