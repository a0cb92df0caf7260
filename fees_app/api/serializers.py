from rest_framework import serializers

from fees_app.models import FeeSchedule, FeeType, LedgerEntry
from registry_site.api.serializers import NullableChoiceField


class FeeQuoteSerializer(serializers.Serializer):
    fee_type = serializers.CharField()
    method = serializers.CharField()
    units = serializers.IntegerField()
    base_fee = serializers.IntegerField()
    unit_fee = serializers.IntegerField()
    min_fee = serializers.IntegerField()
    max_fee = serializers.IntegerField()
    step_size = serializers.IntegerField()
    amount = serializers.IntegerField()
    schedule_version = serializers.IntegerField()


class FeeScheduleSerializer(serializers.ModelSerializer):
    class Meta:
        model = FeeSchedule
        fields = ["fee_type", "version", "method", "base_fee", "unit_fee", "min_fee", "max_fee",
                  "step_size", "is_active", "reason", "proposal_id", "created_at"]
        read_only_fields = fields


class LedgerEntrySerializer(serializers.ModelSerializer):
    # Credits pay no fee: no fee type, no schedule.
    fee_type = NullableChoiceField(choices=FeeType.choices, help_text="Null for credits.")
    schedule_version = serializers.IntegerField(source="schedule.version", default=None,
                                                allow_null=True, read_only=True,
                                                help_text="Null for credits.")

    class Meta:
        model = LedgerEntry
        fields = ["id", "kind", "amount", "balance_after", "fee_type", "schedule_version",
                  "units", "model_name", "model_version", "reason", "created_at"]
        read_only_fields = fields


class FeeAmountSerializer(serializers.Serializer):
    amount = serializers.IntegerField()
    count = serializers.IntegerField()


class FeeByModelSerializer(FeeAmountSerializer):
    name = serializers.CharField()


class FeeByDaySerializer(FeeAmountSerializer):
    date = serializers.DateField()


class FeeByUserSerializer(FeeAmountSerializer):
    username = serializers.CharField()


class FeeStatsSerializer(serializers.Serializer):
    total_collected = serializers.IntegerField()
    total_count = serializers.IntegerField()
    by_type = serializers.DictField(child=FeeAmountSerializer())
    by_model = FeeByModelSerializer(many=True)
    by_day = FeeByDaySerializer(many=True)
    by_user = FeeByUserSerializer(many=True, required=False)
