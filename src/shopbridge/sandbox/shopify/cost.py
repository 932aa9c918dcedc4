"""Calculated query cost (reference §2.1): the requested cost before execution, the actual cost after.

* scalars and enums cost 0, an object 1 plus its selection;
* a connection costs 2 + ``first`` (or ``last``) x the cost of one node (the larger of ``edges { node }`` and
  ``nodes``); ``pageInfo`` and cursors are part of the 2;
* a list of objects costs its size (``first``, or the number of ``names`` for ``quantities``, else 1) x one object;
* an interface or union costs the maximum over its possible types;
* every mutation root field costs 10, whatever it selects.

The actual cost walks the response instead: each object returned costs 1 plus its selection, each connection 2
plus what its returned nodes cost, a null costs nothing. Shopify refunds requested - actual to the bucket.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_abstract_type,
    is_leaf_type,
    value_from_ast_untyped,
)

MUTATION_COST = 10


def _is_list(type_: GraphQLOutputType) -> bool:
    inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    return isinstance(inner, GraphQLList)


class CostCalculator:
    def __init__(self, schema: GraphQLSchema, document: DocumentNode, variables: dict[str, Any] | None) -> None:
        self.schema = schema
        self.variables = variables or {}
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}

    # --- helpers ---------------------------------------------------------------------------------------------

    def arg(self, field: FieldNode, name: str) -> Any:
        for argument in field.arguments or ():
            if argument.name.value == name:
                return value_from_ast_untyped(argument.value, self.variables)
        return None

    def _included(self, node: FieldNode | InlineFragmentNode | FragmentSpreadNode) -> bool:
        for directive in node.directives or ():
            if directive.name.value in ("skip", "include"):
                value = None
                for argument in directive.arguments or ():
                    if argument.name.value == "if":
                        value = value_from_ast_untyped(argument.value, self.variables)
                if directive.name.value == "skip" and value is True:
                    return False
                if directive.name.value == "include" and value is False:
                    return False
        return True

    def _applies(self, condition: str | None, obj: GraphQLObjectType) -> bool:
        if condition is None or condition == obj.name:
            return True
        parent = self.schema.get_type(condition)
        return parent is not None and is_abstract_type(parent) and self.schema.is_sub_type(parent, obj)

    def fields(self, selection_set: SelectionSetNode | None, obj: GraphQLObjectType) -> list[FieldNode]:
        out: list[FieldNode] = []
        if selection_set is None:
            return out
        for selection in selection_set.selections:
            if not self._included(selection):  # type: ignore[arg-type]
                continue
            if isinstance(selection, FieldNode):
                out.append(selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition.name.value if selection.type_condition else None
                if self._applies(condition, obj):
                    out.extend(self.fields(selection.selection_set, obj))
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None and self._applies(fragment.type_condition.name.value, obj):
                    out.extend(self.fields(fragment.selection_set, obj))
        return out

    def _concrete(self, type_: GraphQLOutputType) -> list[GraphQLObjectType]:
        named = get_named_type(type_)
        if is_abstract_type(named):
            return list(self.schema.get_possible_types(named))
        return [named] if isinstance(named, GraphQLObjectType) else []

    # --- requested -------------------------------------------------------------------------------------------

    def requested(self, operation: OperationDefinitionNode) -> int:
        if operation.operation == OperationType.MUTATION:
            mutation = self.schema.mutation_type
            assert mutation is not None
            return MUTATION_COST * len(self.fields(operation.selection_set, mutation))
        query = self.schema.query_type
        assert query is not None
        return self.selection(operation.selection_set, query)

    def selection(self, selection_set: SelectionSetNode | None, type_: GraphQLOutputType) -> int:
        costs = [sum(self.field(f, obj) for f in self.fields(selection_set, obj)) for obj in self._concrete(type_)]
        return max(costs, default=0)

    def field(self, node: FieldNode, obj: GraphQLObjectType) -> int:
        definition = obj.fields.get(node.name.value)
        if definition is None:
            return 0
        named = get_named_type(definition.type)
        if is_leaf_type(named):
            return 0
        if named.name.endswith("Connection") and isinstance(named, GraphQLObjectType):
            size = self.arg(node, "first") or self.arg(node, "last") or 0
            return 2 + int(size) * self._per_node(node, named)
        child = 1 + self.selection(node.selection_set, definition.type)
        if _is_list(definition.type):
            names = self.arg(node, "names")
            size = self.arg(node, "first") or (len(names) if isinstance(names, list) else 1)
            return int(size) * child
        return child

    def _per_node(self, node: FieldNode, connection: GraphQLObjectType) -> int:
        best = 0
        for sub in self.fields(node.selection_set, connection):
            definition = connection.fields.get(sub.name.value)
            if definition is None:
                continue
            if sub.name.value == "nodes":
                best = max(best, 1 + self.selection(sub.selection_set, definition.type))
            elif sub.name.value == "edges":
                edge = get_named_type(definition.type)
                assert isinstance(edge, GraphQLObjectType)
                for edge_field in self.fields(sub.selection_set, edge):
                    if edge_field.name.value == "node":
                        best = max(best, 1 + self.selection(edge_field.selection_set, edge.fields["node"].type))
        return best

    # --- actual ----------------------------------------------------------------------------------------------

    def actual(self, operation: OperationDefinitionNode, data: dict[str, Any] | None) -> int:
        if operation.operation == OperationType.MUTATION:
            mutation = self.schema.mutation_type
            assert mutation is not None
            return MUTATION_COST * len(self.fields(operation.selection_set, mutation))
        query = self.schema.query_type
        assert query is not None
        return self.actual_selection(operation.selection_set, query, data)

    def actual_selection(self, selection_set: SelectionSetNode | None, type_: GraphQLOutputType, value: Any) -> int:
        if not isinstance(value, dict):
            return 0
        costs = []
        for obj in self._concrete(type_):
            costs.append(sum(self.actual_field(f, obj, value) for f in self.fields(selection_set, obj)))
        return max(costs, default=0)

    def actual_field(self, node: FieldNode, obj: GraphQLObjectType, parent: dict[str, Any]) -> int:
        definition = obj.fields.get(node.name.value)
        key = node.alias.value if node.alias else node.name.value
        value = parent.get(key)
        if definition is None or value is None:
            return 0
        named = get_named_type(definition.type)
        if is_leaf_type(named):
            return 0
        if named.name.endswith("Connection") and isinstance(named, GraphQLObjectType):
            return 2 + self._actual_nodes(node, named, value)
        if isinstance(value, list):
            return sum(1 + self.actual_selection(node.selection_set, definition.type, v) for v in value if v)
        return 1 + self.actual_selection(node.selection_set, definition.type, value)

    def _actual_nodes(self, node: FieldNode, connection: GraphQLObjectType, value: dict[str, Any]) -> int:
        best = 0
        for sub in self.fields(node.selection_set, connection):
            key = sub.alias.value if sub.alias else sub.name.value
            items = value.get(key)
            if not isinstance(items, list):
                continue
            definition = connection.fields[sub.name.value]
            if sub.name.value == "nodes":
                best = max(best, sum(1 + self.actual_selection(sub.selection_set, definition.type, v) for v in items))
            elif sub.name.value == "edges":
                edge = get_named_type(definition.type)
                assert isinstance(edge, GraphQLObjectType)
                total = 0
                for edge_value in items:
                    for edge_field in self.fields(sub.selection_set, edge):
                        if edge_field.name.value == "node" and isinstance(edge_value, dict):
                            node_key = edge_field.alias.value if edge_field.alias else "node"
                            total += 1 + self.actual_selection(
                                edge_field.selection_set, edge.fields["node"].type, edge_value.get(node_key)
                            )
                best = max(best, total)
        return best
