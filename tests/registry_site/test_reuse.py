"""registry_site.reuse: a serializer reused within a thread keeps nothing of its last use."""

import threading

import pytest
from rest_framework import serializers

from registry_site.errors import InvalidInput
from registry_site.inputs import validated
from registry_site.reuse import represented, reused


class Pair(serializers.Serializer):
    a = serializers.IntegerField(min_value=0)
    b = serializers.CharField(required=False, default="none")

    def validate(self, attrs):
        if self.context.get("forbid") == attrs["a"]:
            raise serializers.ValidationError({"a": "Forbidden here."})
        return attrs


def test_each_validation_sees_only_its_own_data_context_and_errors():
    assert validated(Pair, {"a": 1, "b": "x"}) == {"a": 1, "b": "x"}
    assert validated(Pair, {"a": 2}) == {"a": 2, "b": "none"}  # b not carried over
    with pytest.raises(InvalidInput) as refused:
        validated(Pair, {"a": -1})
    assert "a" in refused.value.extra["fields"]
    assert validated(Pair, {"a": 3}) == {"a": 3, "b": "none"}  # no error left behind
    with pytest.raises(InvalidInput):
        validated(Pair, {"a": 4}, forbid=4)
    assert validated(Pair, {"a": 4}) == {"a": 4, "b": "none"}  # nor the last context


def test_a_nested_use_of_the_same_class_gets_another_instance():
    with reused(Pair) as outer, reused(Pair) as inner:
        assert inner is not outer
    with reused(Pair) as again:
        assert again in (outer, inner)  # both went back to be reused


def test_answers_are_the_serializers_own():
    class Answer(serializers.Serializer):
        name = serializers.CharField()
        size = serializers.IntegerField()

    class Thing:
        def __init__(self, name, size):
            self.name, self.size = name, size

    for thing in (Thing("a", 1), Thing("b", 2)):
        assert represented(Answer, thing) == Answer(thing).data
    # After an answer the instance validates again (no answer's state left on it).
    assert validated(Answer, {"name": "c", "size": 3}) == {"name": "c", "size": 3}


def test_threads_do_not_share_instances():
    seen = {}

    def use(key):
        with reused(Pair) as serializer:
            seen[key] = serializer
            barrier.wait(timeout=5)

    barrier = threading.Barrier(2)
    threads = [threading.Thread(target=use, args=(k,)) for k in "xy"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen["x"] is not seen["y"]
