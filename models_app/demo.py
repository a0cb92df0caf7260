"""Demo registrations, moderation history and usage for a first look (``manage.py seed_demo``).

Everything goes through the services, so the fees, history and audit trail are real.
"""

import hashlib

from django.db import transaction

from fees_app.models import FeeType
from fees_app.services import account_credit, fee_quote
from models_app.models import Category, Registration, Source
from models_app.services import registration_create, registration_transition, usage_record

Status = Registration.Status
MB = 1_048_576

# What happens to a version after it is registered.
PENDING, APPROVED, REJECTED, SUSPENDED, DEPRECATED, OWNER_DEPRECATED, REOPENED = (
    "pending", "approved", "rejected", "suspended", "deprecated", "owner-deprecated", "reopened"
)

# owner, name, version, category, size (bytes), parameters, architecture, license, tags,
# input shape, output shape, fate, description
DEMO_MODELS = [
    ("carol", "distilbert-base-uncased", "1.0.0", Category.NLP, 64 * MB, 66_000_000,
     "Transformer encoder", "Apache-2.0", ["text", "embeddings", "english"], [1, 512], [1, 768],
     APPROVED, "A distilled BERT: 40% smaller, 60% faster, most of the accuracy."),
    ("carol", "distilbert-base-uncased", "1.1.0", Category.NLP, 63 * MB, 66_000_000,
     "Transformer encoder", "Apache-2.0", ["text", "embeddings", "english", "onnx"], [1, 512],
     [1, 768], PENDING, "ONNX export with int8 dynamic quantization."),
    ("alice", "sentiment-roberta-small", "2.0.0", Category.NLP, 48 * MB, 34_000_000,
     "Transformer encoder", "MIT", ["sentiment", "classification"], [1, 256], [3],
     APPROVED, "Three-way sentiment (negative, neutral, positive) for product reviews."),
    ("carol", "ner-bilstm-crf", "0.9.0", Category.NLP, 12 * MB, 3_100_000, "BiLSTM-CRF",
     "BSD-3-Clause", ["ner", "sequence-labeling"], [1, 128], [1, 128, 9], DEPRECATED,
     "Named-entity tagger for people, places and organisations."),
    ("carol", "ner-bilstm-crf", "1.0.0", Category.NLP, 14 * MB, 3_400_000, "BiLSTM-CRF",
     "BSD-3-Clause", ["ner", "sequence-labeling"], [1, 128], [1, 128, 9], APPROVED,
     "Retrained on a larger corpus; adds the MISC class."),
    ("alice", "toxic-comment-filter", "1.0.0", Category.NLP, 22 * MB, 11_000_000, "CNN",
     "MIT", ["moderation", "classification"], [1, 200], [6], SUSPENDED,
     "Flags toxic, obscene and threatening comments."),
    ("carol", "summarizer-t5-small", "1.0.0", Category.NLP, 92 * MB, 60_000_000,
     "Encoder-decoder transformer", "Apache-2.0", ["summarization", "text"], [1, 512],
     [1, 128], PENDING, "Abstractive news summaries in three sentences."),
    ("alice", "resnet50-imagenet", "1.0.0", Category.COMPUTER_VISION, 98 * MB, 25_600_000,
     "ResNet-50", "Apache-2.0", ["image-classification", "imagenet"], [1, 3, 224, 224],
     [1, 1000], APPROVED, "The classic ResNet-50, ImageNet-1k top-1 76.1%."),
    ("alice", "resnet50-imagenet", "1.1.0", Category.COMPUTER_VISION, 25 * MB, 25_600_000,
     "ResNet-50", "Apache-2.0", ["image-classification", "imagenet", "int8"],
     [1, 3, 224, 224], [1, 1000], PENDING, "Post-training int8 quantization, 4x smaller."),
    ("carol", "yolo-nano-detector", "3.1.0", Category.COMPUTER_VISION, 7 * MB, 1_900_000,
     "YOLO", "GPL-3.0", ["object-detection", "edge"], [1, 3, 416, 416], [1, 2535, 85],
     APPROVED, "Real-time object detection for small devices, 80 COCO classes."),
    ("alice", "mobilenet-v3-small", "1.0.0", Category.COMPUTER_VISION, 10 * MB, 2_500_000,
     "MobileNetV3", "Apache-2.0", ["image-classification", "mobile"], [1, 3, 224, 224],
     [1, 1000], APPROVED, "Image classification for phones."),
    ("carol", "face-embedder", "0.2.0", Category.COMPUTER_VISION, 90 * MB, 23_000_000,
     "ResNet", "", ["faces", "embeddings"], [1, 3, 112, 112], [1, 512], REJECTED,
     "Face embeddings for verification."),
    ("alice", "segformer-b0-ade", "1.0.0", Category.COMPUTER_VISION, 15 * MB, 3_700_000,
     "SegFormer", "Apache-2.0", ["segmentation", "ade20k"], [1, 3, 512, 512],
     [1, 150, 128, 128], PENDING, "Semantic segmentation, 150 ADE20K classes."),
    ("carol", "whisper-tiny-en", "1.0.0", Category.SPEECH, 75 * MB, 39_000_000,
     "Encoder-decoder transformer", "MIT", ["asr", "english"], [1, 80, 3000], [1, 448],
     DEPRECATED, "English speech recognition."),
    ("carol", "whisper-tiny-en", "1.1.0", Category.SPEECH, 76 * MB, 39_000_000,
     "Encoder-decoder transformer", "MIT", ["asr", "english", "timestamps"], [1, 80, 3000],
     [1, 448], APPROVED, "Adds word-level timestamps."),
    ("alice", "keyword-spotter", "1.2.0", Category.SPEECH, 1 * MB, 250_000, "DS-CNN", "MIT",
     ["kws", "edge"], [1, 49, 10], [12], APPROVED, "Twelve wake words on a microcontroller."),
    ("bob", "speaker-verify-ecapa", "0.1.0", Category.SPEECH, 80 * MB, 20_800_000,
     "ECAPA-TDNN", "", ["speaker", "biometrics"], [1, 16000], [1, 192], REJECTED,
     "Speaker verification embeddings."),
    ("carol", "two-tower-retrieval", "1.0.0", Category.RECOMMENDATION, 55 * MB, 14_000_000,
     "Two-tower", "Apache-2.0", ["retrieval", "candidate-generation"], [1, 64], [1, 128],
     APPROVED, "Candidate retrieval for a catalogue of a million items."),
    ("alice", "wide-and-deep-ctr", "2.3.1", Category.RECOMMENDATION, 30 * MB, 8_000_000,
     "Wide & Deep", "Apache-2.0", ["ctr", "ranking"], [1, 40], [1], OWNER_DEPRECATED,
     "Click-through-rate ranking."),
    ("alice", "wide-and-deep-ctr", "3.0.0", Category.RECOMMENDATION, 34 * MB, 9_000_000,
     "Wide & Deep", "Apache-2.0", ["ctr", "ranking", "calibrated"], [1, 48], [1], APPROVED,
     "Calibrated probabilities and eight new cross features."),
    ("bob", "session-gru4rec", "1.0.0", Category.RECOMMENDATION, 18 * MB, 4_000_000, "GRU",
     "MIT", ["session", "sequential"], [1, 20], [1, 50000], PENDING,
     "Next-item prediction from the current browsing session."),
    ("alice", "prophet-retail-demand", "1.0.0", Category.TIME_SERIES, 2 * MB, 12_000,
     "Additive regression", "MIT", ["forecasting", "retail"], [1, 365], [1, 28], APPROVED,
     "Daily demand forecasts, 28 days ahead, with holiday effects."),
    ("carol", "lstm-anomaly-detector", "0.5.0", Category.TIME_SERIES, 5 * MB, 800_000,
     "LSTM autoencoder", "Apache-2.0", ["anomaly-detection", "sensors"], [1, 100, 8],
     [1, 100, 8], SUSPENDED, "Flags unusual sensor readings."),
    ("carol", "n-beats-energy", "1.0.0", Category.TIME_SERIES, 27 * MB, 7_000_000, "N-BEATS",
     "Apache-2.0", ["forecasting", "energy"], [1, 168], [1, 24], APPROVED,
     "Hourly electricity load, one day ahead."),
    ("carol", "tiny-stories-gpt", "1.0.0", Category.GENERATIVE, 100 * MB, 33_000_000,
     "Decoder-only transformer", "MIT", ["text-generation", "small"], [1, 512], [1, 512],
     APPROVED, "Writes short children's stories."),
    ("alice", "ddpm-cifar10", "1.0.0", Category.GENERATIVE, 86 * MB, 35_700_000, "U-Net",
     "Apache-2.0", ["diffusion", "image-generation"], [1, 3, 32, 32], [1, 3, 32, 32],
     APPROVED, "Denoising diffusion trained on CIFAR-10."),
    ("carol", "pixel-vae", "0.3.0", Category.GENERATIVE, 40 * MB, 9_500_000, "VAE", "",
     ["vae", "image-generation"], [1, 3, 64, 64], [1, 3, 64, 64], REJECTED,
     "Variational autoencoder for 64x64 images."),
    ("alice", "music-transformer-lite", "1.0.0", Category.GENERATIVE, 70 * MB, 18_000_000,
     "Decoder-only transformer", "Apache-2.0", ["music", "midi"], [1, 2048], [1, 2048],
     PENDING, "Piano continuations from a MIDI prompt."),
    ("carol", "tabular-xgboost-churn", "1.0.0", Category.OTHER, 3 * MB, 150_000,
     "Gradient-boosted trees", "Apache-2.0", ["tabular", "churn"], [1, 42], [1], APPROVED,
     "Monthly churn probability for subscription customers."),
    ("alice", "graph-sage-fraud", "1.0.0", Category.OTHER, 9 * MB, 1_200_000, "GraphSAGE",
     "MIT", ["graph", "fraud"], [1, 64], [1, 2], DEPRECATED,
     "Fraud scores for accounts in a transaction graph."),
    ("bob", "protein-fold-mini", "0.1.0", Category.OTHER, 95 * MB, 45_000_000,
     "Evoformer (reduced)", "CC-BY-4.0", ["biology", "proteins"], [1, 256, 21],
     [1, 256, 256], REOPENED, "Contact maps for short protein sequences."),
]

REASONS = {
    APPROVED: "Checked the hash, license and model card; approved.",
    REJECTED: "No license given and the model card does not say what data it was "
              "trained on.",
    SUSPENDED: "Suspended after reports of biased output; under review.",
    DEPRECATED: "Superseded by a newer version.",
    OWNER_DEPRECATED: "Please move to version 3.0.0.",
    REOPENED: "The owner added a license; reopened for review.",
}
USERS_OF_MODELS = ["bob", "alice", "carol", "moderator"]


def _demo_hash(name: str, version: str) -> str:
    return hashlib.sha256(f"{name}:{version}".encode()).hexdigest()


def _fund_owners(users: dict) -> None:
    """Credit each owner exactly the fees of their demo registrations."""
    needed: dict[str, int] = {}
    newest_size: dict[str, int] = {}
    for owner, name, _, _, size, *_ in DEMO_MODELS:
        if name in newest_size:
            fee_type, units = FeeType.UPDATE, abs(size - newest_size[name])
        else:
            fee_type, units = FeeType.REGISTRATION, size
        newest_size[name] = size
        needed[owner] = needed.get(owner, 0) + fee_quote(fee_type=fee_type, units=units)[1].amount
    for owner, amount in needed.items():
        account_credit(user=users[owner], amount=amount, actor=users["moderator"],
                       reason="Demo funds for the sample model registrations")


def _record_usage(registration: Registration, users: dict, index: int) -> None:
    for j in range(3 + (index * 5) % 11):
        usage_record(
            registration=registration, user=users[USERS_OF_MODELS[(index + j) % 4]],
            success=j % 6 != 5, duration_us=1500 + (index * 137 + j * 53) % 4000,
        )


def seed_models(users: dict) -> None:
    """Register the demo models once, moderate them and record usage; later runs do nothing."""
    if Registration.objects.filter(name=DEMO_MODELS[0][1]).exists():
        return
    moderator = users["moderator"]
    with transaction.atomic():
        _fund_owners(users)
        for index, (owner, name, version, category, size, parameters, architecture, license,
                    tags, input_shape, output_shape, fate, description) in enumerate(DEMO_MODELS):
            registration = registration_create(
                owner=users[owner], name=name, version=version, hash=_demo_hash(name, version),
                size_bytes=size, parameter_count=parameters, category=category,
                description=description, license=license, tags=tags,
                architecture=architecture, input_shape=input_shape, output_shape=output_shape,
                source_url=f"https://models.example.com/{name}/{version}", source=Source.WEB,
            )

            def move(to_status, *, actor=moderator, reason, registration=registration):
                registration_transition(registration=registration, to_status=to_status,
                                        actor=actor, source=Source.ADMIN, reason=reason)

            if fate in (REJECTED, REOPENED):
                move(Status.REJECTED, reason=REASONS[REJECTED])
                if fate == REOPENED:
                    move(Status.PENDING, reason=REASONS[REOPENED])
            elif fate != PENDING:
                move(Status.APPROVED, reason=REASONS[APPROVED])
                _record_usage(registration, users, index)
                if fate == SUSPENDED:
                    move(Status.SUSPENDED, reason=REASONS[SUSPENDED])
                elif fate == DEPRECATED:
                    move(Status.DEPRECATED, reason=REASONS[DEPRECATED])
                elif fate == OWNER_DEPRECATED:
                    move(Status.DEPRECATED, actor=users[owner], reason=REASONS[fate])
