"""Agent: an LLM that may use tools before it answers — the Retrieval tool (search datasets) and other
agents (each a tool taking an instruction). Rounds of tool calls go on until the model answers in text or
``max_rounds`` is reached, when it is asked to answer with what it has.

Tools are offered through the model's native function calling; a model that refuses tool definitions gets
them described in the system prompt instead, and calls them by answering with a JSON object.
"""

from __future__ import annotations

import json
import re
import weakref
from collections.abc import Generator, Iterator, Mapping
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from shared.agent.components.base import ComponentParams
from shared.agent.components.llm import LLM, LLMParams, model_text
from shared.agent.components.retrieval import DEFAULT_FUNCTION_NAME, Retrieval, RetrievalParams
from shared.agent.errors import ComponentError, DslError
from shared.ports.chat_model import (
    ChatMessage,
    ChatModel,
    ChatModelError,
    ChatOptions,
    ChatToolsUnsupported,
    ToolCall,
    ToolSpec,
)

#: Components an Agent may use as tools.
TOOL_COMPONENTS = ("Retrieval", "Agent")
#: How deep agents may nest as each other's tools.
MAX_TOOL_DEPTH = 3
#: A tool's answer is cut to this many characters before it goes back to the model.
MAX_TOOL_RESULT_CHARS = 20_000
_TOOL_NAME = re.compile(r"[^A-Za-z0-9_-]")
FINAL_ROUND_PROMPT = (
    "You have used the tools as many times as you may. Answer the user's request now with the information "
    "you already have; do not call tools."
)
AGENT_TOOL_DESCRIPTION = "This is an agent for a specific task."

#: Models (instances are built once per process) that refused native tool definitions: tools are described
#: to them in the prompt from then on, sparing a refused request per run.
_WITHOUT_NATIVE_TOOLS: weakref.WeakSet[ChatModel] = weakref.WeakSet()


class ToolEntry(BaseModel):
    model_config = ConfigDict(extra="ignore")

    component_name: str
    name: str = ""
    params: dict[str, Any] = Field(default_factory=dict)


class AgentParams(LLMParams):
    tools: list[ToolEntry] = Field(default_factory=list)
    mcp: list[Any] = Field(default_factory=list)
    max_rounds: int = Field(5, ge=1, le=50)
    description: str = ""
    user_prompt: str = ""


class Tool(Protocol):
    spec: ToolSpec

    def call(self, arguments: Mapping[str, Any]) -> str: ...


class RetrievalTool:
    """Search datasets for a query the model writes; the chunks join the turn's reference."""

    def __init__(self, name: str, search: Retrieval) -> None:
        self._search = search
        description = search.params.description or "Search the datasets."
        self.spec = ToolSpec(
            name=name,
            description=description,
            parameters={
                "type": "object",
                "properties": {
                    "query": {
                        "type": "string",
                        "description": "The keywords to search the dataset with: the most important words and "
                        "terms (with synonyms) of the request.",
                    }
                },
                "required": ["query"],
            },
        )

    def call(self, arguments: Mapping[str, Any]) -> str:
        query = arguments.get("query")
        if not isinstance(query, str) or not query.strip():
            return "Error: `query` is required: the words to search for."
        result = self._search.search(query)
        return result or "Nothing relevant was found."


class AgentTool:
    """Another agent, given an instruction (and optionally the reasoning and context behind it)."""

    def __init__(self, name: str, agent: Agent) -> None:
        self._agent = agent
        self.spec = ToolSpec(
            name=name,
            description=agent.params.description or AGENT_TOOL_DESCRIPTION,
            parameters={
                "type": "object",
                "properties": {
                    "user_prompt": {
                        "type": "string",
                        "description": agent.params.user_prompt or "The task you give to the agent.",
                    },
                    "reasoning": {"type": "string", "description": "Why you give it this task."},
                    "context": {"type": "string", "description": "What the agent needs to know to do it."},
                },
                "required": ["user_prompt"],
            },
        )

    def call(self, arguments: Mapping[str, Any]) -> str:
        task = arguments.get("user_prompt")
        if not isinstance(task, str) or not task.strip():
            return "Error: `user_prompt` is required: the task for the agent."
        prompt = ""
        if arguments.get("reasoning"):
            prompt += f"REASONING:\n{arguments['reasoning']}\n\n"
        if arguments.get("context"):
            prompt += f"CONTEXT:\n{arguments['context']}\n\n"
        prompt += f"QUERY:\n{task}"
        return self._agent.ask(prompt)


def tool_name(entry: ToolEntry) -> str:
    """A function name the providers accept (``^[A-Za-z0-9_-]{1,64}$``) for a tool entry."""
    fallback = str(entry.params.get("function_name") or DEFAULT_FUNCTION_NAME)
    raw = entry.name or (fallback if entry.component_name == "Retrieval" else "agent")
    return (_TOOL_NAME.sub("_", raw) or "tool")[:64]


def check_tools(cid: str, params: AgentParams, depth: int = 1) -> None:
    """Tools must be components an Agent can use, with valid parameters; agents nest a few levels at most."""
    if params.mcp:
        raise DslError(f"Component '{cid}' (Agent): MCP servers are not supported.")
    if params.tools and depth > MAX_TOOL_DEPTH:
        raise DslError(f"Component '{cid}' (Agent): agents may nest as tools {MAX_TOOL_DEPTH} levels deep at most.")
    for entry in params.tools:
        if entry.component_name not in TOOL_COMPONENTS:
            raise DslError(f"Component '{entry.component_name}' is not supported")
        where = f"{cid}-->{tool_name(entry)}"
        if entry.component_name == "Retrieval":
            Retrieval.parse(where, entry.params)
        else:
            nested = Agent.parse(where, entry.params)
            assert isinstance(nested, AgentParams)
            check_tools(where, nested, depth + 1)


def _parse_json_calls(text: str, turn: int) -> tuple[ToolCall, ...] | None:
    """Tool calls written as JSON (``{"tool_calls": [{"name", "arguments"}]}``, one call, or a list of calls);
    None when the text is not such an object."""
    body = text.strip()
    if body.startswith("```"):
        body = body.strip("`")
        body = body[body.find("\n") + 1 :] if "\n" in body else body
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    if isinstance(parsed, Mapping) and "tool_calls" in parsed:
        parsed = parsed["tool_calls"]
    items = parsed if isinstance(parsed, list) else [parsed]
    calls = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            return None
        arguments = item.get("arguments", {})
        text_arguments = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
        calls.append(ToolCall(id=f"call_{turn}_{index}", name=item["name"], arguments=text_arguments))
    return tuple(calls) or None


def _tools_prompt(tools: Mapping[str, Tool]) -> str:
    lines = ["", "", "# Tools", "You can call these tools to find what you need before you answer:"]
    for name, tool in tools.items():
        lines.append(f"- {name}: {tool.spec.description}")
        lines.append(f"  arguments (JSON schema): {json.dumps(tool.spec.parameters, ensure_ascii=False)}")
    lines += [
        "To call tools, answer with one JSON object and nothing else:",
        '{"tool_calls": [{"name": "<tool name>", "arguments": {<arguments>}}]}',
        "You will then be given the results. Call more tools, or answer the user in plain text (not JSON).",
    ]
    return "\n".join(lines)


class Agent(LLM):
    component_name = "Agent"
    Params = AgentParams
    params: AgentParams

    @classmethod
    def check(cls, cid: str, params: ComponentParams, components: Mapping[str, Mapping[str, Any]]) -> None:
        super().check(cid, params, components)
        assert isinstance(params, AgentParams)
        check_tools(cid, params)

    def tools(self) -> dict[str, Tool]:
        tools: dict[str, Tool] = {}
        for entry in self.params.tools:
            name = tool_name(entry)
            unique, n = name, 2
            while unique in tools:
                unique, n = f"{name[:60]}_{n}", n + 1
            where = f"{self.id}-->{unique}"
            if entry.component_name == "Retrieval":
                params = Retrieval.parse(where, entry.params)
                assert isinstance(params, RetrievalParams)
                tools[unique] = RetrievalTool(unique, Retrieval(self.canvas, where, params))
            else:
                params = Agent.parse(where, entry.params)
                assert isinstance(params, AgentParams)
                tools[unique] = AgentTool(unique, Agent(self.canvas, where, params))
        return tools

    def cites_knowledge(self) -> bool:
        return bool(self.canvas.reference) or any(e.component_name == "Retrieval" for e in self.params.tools)

    def run(self) -> None:
        model = self.model()
        messages = self.conversation(self.system_prompt())
        self.set_output("use_tools", [])
        if self.streams_to_message():
            self.deliver(self.answer(model, messages, self.options()))
        else:
            self.deliver(None, "".join(self.answer(model, messages, self.options())))

    def ask(self, prompt: str) -> str:
        """The whole answer to an instruction (this agent used as another's tool)."""
        model = self.model()
        system = self.system_prompt()
        messages = [ChatMessage("system", system)] if system.strip() else []
        messages.append(ChatMessage("user", prompt))
        answer = "".join(self.answer(model, messages, self.options()))
        self.set_output("content", answer)
        return answer

    def answer(self, model: ChatModel, messages: list[ChatMessage], options: ChatOptions) -> Iterator[str]:
        """The answer's text as it is produced, after whatever tool rounds the model wants."""
        tools = self.tools()
        if not tools:
            yield from model_text(model, messages, options)
            return
        used: list[dict[str, Any]] = []
        self.set_output("use_tools", used)
        native = model not in _WITHOUT_NATIVE_TOOLS
        described = False
        for turn in range(self.params.max_rounds + 1):
            if turn == self.params.max_rounds:
                messages.append(ChatMessage("user", FINAL_ROUND_PROMPT))
                yield from model_text(model, messages, options)
                return
            calls: tuple[ToolCall, ...] = ()
            if native:
                try:
                    text, calls = yield from self._native_round(model, messages, tools, options)
                except ChatToolsUnsupported:
                    _WITHOUT_NATIVE_TOOLS.add(model)
                    native = False
            if not native:
                if not described:
                    messages = _with_system(messages, _tools_prompt(tools))
                    described = True
                text, calls = yield from self._json_round(model, messages, options, turn)
            if not calls:
                return
            if native:
                messages.append(ChatMessage("assistant", text, tool_calls=calls))
            else:
                messages.append(ChatMessage("assistant", text))
            for call in calls:
                result = self._call(tools, call, used)
                if native:
                    messages.append(ChatMessage("tool", result, tool_call_id=call.id))
                else:
                    messages.append(ChatMessage("user", f"The tool `{call.name}` answered:\n{result}"))

    def _native_round(
        self, model: ChatModel, messages: list[ChatMessage], tools: Mapping[str, Tool], options: ChatOptions
    ) -> Generator[str, None, tuple[str, tuple[ToolCall, ...]]]:
        stream = model.stream_with_tools(messages, [tool.spec for tool in tools.values()], options)
        parts: list[str] = []
        calls: tuple[ToolCall, ...] = ()
        try:
            for delta in stream:
                if delta.text:
                    parts.append(delta.text)
                    yield delta.text
                if delta.tool_calls:
                    calls = delta.tool_calls
        finally:
            stream.close()
        return "".join(parts), calls

    def _json_round(
        self, model: ChatModel, messages: list[ChatMessage], options: ChatOptions, turn: int
    ) -> Generator[str, None, tuple[str, tuple[ToolCall, ...]]]:
        """One answer of a model calling tools by writing JSON: text streams on as soon as it is clearly not
        a JSON object; an answer that opens like one is held back and read as tool calls if it parses."""
        buffered = ""
        streaming = False
        stream = model.stream(messages, options)
        try:
            for delta in stream:
                if not delta.text:
                    continue
                if streaming:
                    yield delta.text
                    buffered += delta.text
                    continue
                buffered += delta.text
                head = buffered.lstrip()
                if head and head[0] not in "{[`":
                    streaming = True
                    yield buffered
        finally:
            stream.close()
        if streaming:
            return buffered, ()
        calls = _parse_json_calls(buffered, turn)
        if calls is None:
            yield buffered
            return buffered, ()
        return buffered, calls

    def _call(self, tools: Mapping[str, Tool], call: ToolCall, used: list[dict[str, Any]]) -> str:
        """Run one tool call; a failure becomes the result the model reads, so it can try otherwise."""
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            result = f"Error: the arguments of `{call.name}` are not a JSON object: {call.arguments[:200]}"
            arguments = {}
        elif call.name not in tools:
            result = f"Error: there is no tool named `{call.name}`. The tools are: {', '.join(tools)}."
        else:
            try:
                result = tools[call.name].call(arguments)
            except (ComponentError, ChatModelError) as exc:
                result = f"Error: {exc.message}"
        result = result[:MAX_TOOL_RESULT_CHARS]
        used.append({"name": call.name, "arguments": arguments, "results": result})
        return result


def _with_system(messages: list[ChatMessage], addition: str) -> list[ChatMessage]:
    """``messages`` with ``addition`` appended to the system prompt (one is added if there is none)."""
    if messages and messages[0].role == "system":
        return [ChatMessage("system", messages[0].content + addition), *messages[1:]]
    return [ChatMessage("system", addition.strip()), *messages]
