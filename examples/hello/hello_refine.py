"""The smallest package refine builds from a workspace folder."""


def greet() -> str:
    return "hello from refine"
