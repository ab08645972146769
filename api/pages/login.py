"""Signing in and out: the sign-in page, one-time login links, demo sign-in (sandbox only) and sign-out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import Cookie
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from api.auth import (
    LOGIN_LINK_MAX_MINUTES,
    LOGIN_PURPOSE,
    SESSION_COOKIE,
    SESSION_HOURS,
    SignedInStaff,
    SignedToken,
    active_staff,
    read_token,
    safe_next,
    session_token,
)
from api.pages.common import container_of, utc_now
from domain.sign_in.ports import SignInUnitOfWork
from domain.sign_in.use_cases import sign_in_as_demo_staff, use_login_link
from domain.staff import StaffIdentity
from domain.vocabulary import ROLE_RANK
from storage.queries.staff import active_staff_members, staff_by_email
from switchboard.settings import Settings


def _settings(request: Request[Any, Any, Any]) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def demo_enabled(settings: Settings) -> bool:
    return settings.sandbox and not settings.is_production


async def _demo_staff(request: Request[Any, Any, Any]) -> list[StaffIdentity]:
    rows = await active_staff_members(container_of(request).database)
    return sorted(rows, key=lambda s: (-ROLE_RANK[s.role], s.name))


def _sign_in_uow(request: Request[Any, Any, Any]) -> SignInUnitOfWork:
    container = container_of(request)
    return container.units.sign_ins()


def _signed_in_redirect(request: Request[Any, Any, Any], staff: SignedInStaff, target: str) -> Redirect:
    settings = _settings(request)
    cookie = Cookie(
        key=SESSION_COOKIE,
        value=session_token(settings.session_secret, staff.id, utc_now()),
        path="/",
        max_age=SESSION_HOURS * 3600,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
    )
    return Redirect(safe_next(target), status_code=303, cookies=[cookie])


async def _use_login_link(request: Request[Any, Any, Any], signed: SignedToken, staff: SignedInStaff) -> bool:
    """Records the sign-in; False when this link was used before (a link signs in once)."""
    issued_after = signed.expires_at - timedelta(minutes=LOGIN_LINK_MAX_MINUTES)
    return await use_login_link(_sign_in_uow(request), staff.email, signed.nonce, issued_after)


class LoginPages(Controller):
    @get("/login", name="login")
    async def login_page(
        self, request: Request[Any, Any, Any], next: FromQuery[str | None] = None
    ) -> Template:
        settings = _settings(request)
        demo = await _demo_staff(request) if demo_enabled(settings) else []
        return Template(
            "login.html",
            context={"next": safe_next(next), "demo_staff": demo, "business_name": settings.business_name},
        )

    @get("/login/{token:str}", name="login_link")
    async def login_link(self, request: Request[Any, Any, Any], token: FromPath[str]) -> Redirect | Template:
        settings = _settings(request)
        signed = read_token(settings.session_secret, token, LOGIN_PURPOSE, utc_now())
        staff = await active_staff(container_of(request).database, signed.staff_id) if signed else None
        if signed is None or staff is None or not await _use_login_link(request, signed, staff):
            return Template(
                "login.html",
                context={
                    "next": "/",
                    "demo_staff": [],
                    "error": "This sign-in link is not valid: it has expired, was already used, "
                    "or belongs to an account that is no longer active. Ask for a new one.",
                },
                status_code=400,
            )
        return _signed_in_redirect(request, staff, "/")

    @post("/login/demo", name="login_demo", status_code=303)
    async def demo_login(self, request: Request[Any, Any, Any]) -> Redirect:
        settings = _settings(request)
        if not demo_enabled(settings):
            raise NotFoundException("demo sign-in is only available in the sandbox")
        form = await request.form()
        found = await staff_by_email(container_of(request).database, str(form.get("email", "")), via="web")
        staff = await active_staff(container_of(request).database, found.staff_id) if found else None
        if staff is None:
            return Redirect("/login", status_code=303)
        await sign_in_as_demo_staff(_sign_in_uow(request), staff.email)
        return _signed_in_redirect(request, staff, str(form.get("next", "/")))

    @post("/logout", name="logout", status_code=303)
    async def logout(self) -> Redirect:
        response = Redirect("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
