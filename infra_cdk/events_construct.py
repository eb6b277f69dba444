"""The event bus the service announces ends of work on (parses, knowledge builds): the stack's own bus, or the
account's default bus (a stage setting). Functions that publish get ``events:PutEvents`` on it alone."""

from __future__ import annotations

from aws_cdk import aws_events as events
from constructs import Construct

from infra_cdk.function_construct import ServiceFunction
from shared.constants import ENV_EVENT_BUS, SERVICE_NAME

DEFAULT_BUS_NAME = "default"


class EventsConstruct(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, bus: str, stack_name: str) -> None:
        super().__init__(scope, construct_id)
        if bus == "stack":
            self.bus: events.IEventBus = events.EventBus(
                self, "Bus", event_bus_name=f"{stack_name}-events", description=f"{SERVICE_NAME}: ends of work"
            )
        else:
            self.bus = events.EventBus.from_event_bus_name(self, "DefaultBus", DEFAULT_BUS_NAME)

    def grant_put(self, function: ServiceFunction) -> None:
        """Let ``function`` publish on the bus (FLOWLESS_EVENT_BUS names it)."""
        function.function.add_environment(ENV_EVENT_BUS, self.bus.event_bus_name)
        self.bus.grant_put_events_to(function.function)
