from rest_framework import serializers


class AccountSerializer(serializers.Serializer):
    username = serializers.CharField()
    balance = serializers.IntegerField()
    voting_power = serializers.IntegerField()
    groups = serializers.ListField(child=serializers.CharField())
    is_moderator = serializers.BooleanField()
