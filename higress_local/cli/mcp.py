"""`hlocal mcp tools` / `hlocal mcp call`: the MCP server on the running stack, through the gateway."""

from __future__ import annotations

import json

import click

from .options import json_option, project_from, project_options
from ..errors import McpCallFailed
from ..config.validate import check_path
from ..probe.mcpclient import describe_arguments, gateway_mcp_url, McpClient, parse_tool_args, tool_summary
from ..stack import require_running

PATH_HELP = "Path of the MCP endpoint on the gateway."


@click.group("mcp")
def mcp_group() -> None:
    """List and call the tools of an MCP server plugin on the running stack (Streamable HTTP)."""


@mcp_group.command("tools")
@project_options()
@click.option("--path", "path", default="/mcp", show_default=True, help=PATH_HELP)
@json_option("Machine-readable output, with each tool's input schema.")
@click.pass_context
def tools_command(ctx: click.Context, path: str, as_json: bool) -> None:
    """List the tools: name, description and arguments."""
    url = _endpoint(ctx, path)
    with McpClient(url) as client:
        tools = [tool_summary(t) for t in client.list_tools()]
    if as_json:
        click.echo(json.dumps(tools, indent=2, ensure_ascii=False))
        return
    if not tools:
        click.echo(f"the MCP server at {url} lists no tools")
    for tool in tools:
        first_line = tool["description"].strip().splitlines()[0] if tool["description"].strip() else ""
        click.echo(f"{tool['name']}  {first_line}".rstrip())
        click.echo(f"    arguments: {describe_arguments(tool['inputSchema'])}")


@mcp_group.command("call")
@project_options()
@click.argument("tool")
@click.argument("arguments", nargs=-1, metavar="[KEY=VALUE|KEY:=JSON]...")
@click.option("--path", "path", default="/mcp", show_default=True, help=PATH_HELP)
@json_option("Print the whole tool result as JSON.")
@click.pass_context
def call_command(ctx: click.Context, tool: str, arguments: tuple[str, ...], path: str, as_json: bool) -> None:
    """Call one tool and print its text content; exit 1 when the tool reports an error.

    KEY=VALUE is JSON where it parses (3, true), else text; a property the tool declares as a
    string always gets the text as given. KEY:=JSON must be JSON.
    """
    parse_tool_args(arguments)  # usage errors first, running or not
    url = _endpoint(ctx, path)
    with McpClient(url) as client:
        schemas = {t.name: t.input_schema or {} for t in client.list_tools()}
        if tool not in schemas:
            raise McpCallFailed(f"the MCP server at {url} has no tool {tool!r}",
                                f"its tools: {', '.join(sorted(schemas)) or 'none'} (`hlocal mcp tools`)")
        result = client.call_tool(tool, parse_tool_args(arguments, schemas[tool]))
    if as_json:
        click.echo(json.dumps(result.result, indent=2, ensure_ascii=False))
    elif result.text:
        click.echo(result.text, err=result.is_error)
    if result.is_error:
        first = result.text.strip().splitlines()[0] if result.text.strip() else "(no text)"
        raise McpCallFailed(f"tool {tool!r} reported an error: {first}",
                            "`hlocal logs --plugin` shows what the plugin logged; `hlocal logs backend` what "
                            "the mock backend answered")


def _endpoint(ctx: click.Context, path: str) -> str:
    """The MCP endpoint of the running stack (the error of `hlocal request` when it is not running)."""
    check_path(path, "--path")
    project = project_from(ctx)
    state = require_running(project)
    return gateway_mcp_url(state.gateway_url, path)
