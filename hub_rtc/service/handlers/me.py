"""/me, /identity, /policy, /authorize and the spec itself."""

from __future__ import annotations

import yaml

from ... import __version__
from ...decision import Resource
from ...manager import Actor
from ...manager.actor import SCOPE_AUTHORIZE, server_token_refusal
from ...manager.errors import Forbidden, Invalid
from ..spec import spec
from .base import APIHandler


class RootHandler(APIHandler):
    async def get(self) -> None:
        self.write_json({"version": __version__})


class SpecHandler(APIHandler):
    async def get(self) -> None:
        self.set_header("Content-Type", "application/yaml; charset=utf-8")
        self.finish(yaml.safe_dump(spec(), sort_keys=False))


class MeHandler(APIHandler):
    async def get(self) -> None:
        actor = await self.actor()
        policy = self.manager.ctx.policy
        identity = await self.manager.people.identity(actor.name)
        self.write_json({
            **identity,
            "admin": actor.is_admin,
            "can_create": self.manager.sessions.may_create(actor),
            "scopes": sorted(s for s in actor.scopes if s.startswith("custom:rtc:")),
            "watches": sorted(policy.watched_groups(actor.groups)),
            "groups": sorted(actor.groups),
        })


class IdentityHandler(APIHandler):
    async def get(self) -> None:
        actor = await self.actor()
        name = self.get_argument("user", actor.name)
        if name != actor.name:
            if not actor.has(SCOPE_AUTHORIZE):
                raise Forbidden(f"asking about other users needs the {SCOPE_AUTHORIZE} scope")
            await self.manager.people.hub_user(name)
        self.write_json(await self.manager.people.identity(name))


class PolicyHandler(APIHandler):
    async def get(self) -> None:
        await self.actor()
        self.write_json(self.manager.ctx.policy.to_dict())


class StatusHandler(APIHandler):
    async def get(self) -> None:
        self.write_json(await self.manager.status.report(await self.actor(None)))


class AuthorizeHandler(APIHandler):
    async def post(self) -> None:
        caller = await self.actor()
        body = self.body("AuthorizeRequest")
        subject = await self._subject(caller, body)
        resource = Resource(**body["resource"])
        decision = await self.manager.decisions.authorize(caller, subject, body["action"], resource)
        self.write_json({"allowed": decision.allowed, "reason": decision.reason,
                         "role": decision.role, "user": subject.name})

    async def _subject(self, caller: Actor, body: dict) -> Actor:
        """Whom the question is about: a token's user, a named user, or the caller."""
        if "user" in body and "token" in body:
            raise Invalid("give either user or token, not both")
        if "token" in body:
            model = await self.hub_auth.user_for_token(body["token"], sync=False)
            if not model or model.get("kind", "user") != "user":
                raise Invalid("token: not a valid hub user token")
            name = model["name"]
            refusal = server_token_refusal(Actor(name, scopes=frozenset(model.get("scopes") or ())))
            if refusal is not None:  # it is the server, not its user: ask about them by name
                raise Invalid(f"token: {refusal}")
        else:
            name = body.get("user", caller.name)
        hub_user = await self.manager.people.hub_user(name)
        return Actor(name, hub_user.groups)


default_handlers = [
    (r"/?", RootHandler),
    (r"/openapi.yaml", SpecHandler),
    (r"/me", MeHandler),
    (r"/identity", IdentityHandler),
    (r"/policy", PolicyHandler),
    (r"/status", StatusHandler),
    (r"/authorize", AuthorizeHandler),
]
