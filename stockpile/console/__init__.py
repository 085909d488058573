"""The console: the reserve at work in a browser, at ``/console``.

Server-rendered HTML (Jinja2 templates through Litestar, htmx for partial updates), with every
asset shipped in this package so it works on a closed network. The views call the same use cases
as the API and its guards, so authority and need-to-know are the API's. Registered in the app as
one plugin (``ConsolePlugin``).
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Router
from litestar.config.app import AppConfig
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.middleware import DefineMiddleware
from litestar.plugins import InitPluginProtocol
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from stockpile.api import problems
from stockpile.config import Settings
from stockpile.console.session import Sealer
from stockpile.console.web import SessionMiddleware, failure_page

HERE = Path(__file__).parent


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html", "svg"]),
                      extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
    env.install_null_translations(newstyle=True)  # each render passes the request's gettext
    return env


def router() -> Router:
    from stockpile.console import auditor, commander, operator, planner, potential, sensors, signin

    static = create_static_files_router(path="/static", directories=[HERE / "static"], include_in_schema=False,
                                        opt={"exclude_from_auth": True}, send_as_attachment=False)
    return Router(
        path="/console", include_in_schema=False, opt={"exclude_from_auth": True},
        route_handlers=[static, *signin.HANDLERS, *operator.HANDLERS, *planner.HANDLERS, *commander.HANDLERS,
                        *auditor.HANDLERS, *sensors.HANDLERS, *potential.HANDLERS],
        middleware=[DefineMiddleware(SessionMiddleware, exclude=["/console/static"])],
        exception_handlers={kind: failure_page for kind in problems.HANDLERS},
    )


class ConsolePlugin(InitPluginProtocol):
    """Adds the console's routes, templates and session sealer to the app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.append(router())
        app_config.template_config = TemplateConfig(engine=JinjaTemplateEngine.from_environment(_environment()))
        app_config.state["console_sealer"] = Sealer(self.settings.console_secret, self.settings.console_session_minutes)
        return app_config
