"""Object definitions the LwM2M tests share (beside the shipped ones)."""

from __future__ import annotations

from gatewayd.lwm2m.ddf import load_registry, parse_ddf
from gatewayd.lwm2m.definitions import ObjectRegistry

# Access Control (object 2) as the TLV examples of the core specification use it; not shipped.
ACCESS_CONTROL_DDF = """<?xml version="1.0" encoding="utf-8"?>
<LWM2M><Object ObjectType="MODefinition">
  <Name>LwM2M Access Control</Name><ObjectID>2</ObjectID><ObjectURN>urn:oma:lwm2m:oma:2</ObjectURN>
  <MultipleInstances>Multiple</MultipleInstances><Mandatory>Optional</Mandatory>
  <Resources>
    <Item ID="0"><Name>Object ID</Name><Operations>R</Operations><MultipleInstances>Single</MultipleInstances>
      <Mandatory>Mandatory</Mandatory><Type>Integer</Type></Item>
    <Item ID="1"><Name>Object Instance ID</Name><Operations>R</Operations>
      <MultipleInstances>Single</MultipleInstances><Mandatory>Mandatory</Mandatory><Type>Integer</Type></Item>
    <Item ID="2"><Name>ACL</Name><Operations>RW</Operations><MultipleInstances>Multiple</MultipleInstances>
      <Mandatory>Optional</Mandatory><Type>Integer</Type></Item>
    <Item ID="3"><Name>Access Control Owner</Name><Operations>RW</Operations>
      <MultipleInstances>Single</MultipleInstances><Mandatory>Mandatory</Mandatory><Type>Integer</Type></Item>
  </Resources>
</Object></LWM2M>
"""

# One single and one multiple resource of every type, ids = 10*k (+1 for the multiple one).
TYPES = ["String", "Integer", "Unsigned Integer", "Float", "Boolean", "Opaque", "Time", "Objlnk", "Corelnk"]


def _all_types_ddf() -> str:
    items = []
    for k, t in enumerate(TYPES):
        for rid, multi in ((10 * k, "Single"), (10 * k + 1, "Multiple")):
            items.append(
                f'<Item ID="{rid}"><Name>{t} {multi}</Name><Operations>RW</Operations>'
                f"<MultipleInstances>{multi}</MultipleInstances><Mandatory>Optional</Mandatory>"
                f"<Type>{t}</Type></Item>"
            )
    items.append(
        '<Item ID="200"><Name>Run</Name><Operations>E</Operations><MultipleInstances>Single</MultipleInstances>'
        "<Mandatory>Optional</Mandatory><Type></Type></Item>"
    )
    return (
        "<LWM2M><Object><Name>All Types</Name><ObjectID>32769</ObjectID><MultipleInstances>Multiple"
        "</MultipleInstances><Mandatory>Optional</Mandatory><Resources>"
        + "".join(items)
        + "</Resources></Object></LWM2M>"
    )


ALL_TYPES_ID = 32769


def make_registry() -> ObjectRegistry:
    registry = load_registry()
    for definition in parse_ddf(ACCESS_CONTROL_DDF) + parse_ddf(_all_types_ddf()):
        registry.add(definition)
    return registry
