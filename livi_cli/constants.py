"""Audio and model numbers used across livi, in one place (like whisper's audio.py)."""

SAMPLE_RATE = 16_000  # Whisper's input rate; every decoder resamples to it
WINDOW_SECONDS = 30  # one Whisper input window
WINDOW_SAMPLES = SAMPLE_RATE * WINDOW_SECONDS  # 480,000 samples in a 30 s window
HOP_LENGTH = 160  # Whisper STFT hop: 10 ms at 16 kHz
N_FFT = 400  # Whisper STFT size: 25 ms at 16 kHz
MEL_FRAMES = WINDOW_SAMPLES // HOP_LENGTH  # 3000 log-mel frames per window
ENCODER_FRAMES = MEL_FRAMES // 2  # 1500: the encoder's second conv has stride 2
N_MELS_TURBO = 128  # large-v3 / large-v3-turbo use 128 mel bins (older Whispers use 80)

WHISPER_DIM = 1280  # hidden size of the large-v3-turbo encoder
EMBED_DIM = 768  # gte-multilingual-base sentence embedding size: the target space
HEAD_HIDDENS = (3072, 2048, 2048, 1536)  # projection MLP hidden sizes of the published head
HEAD_NUM_HEADS = 1  # attention-pooling heads of the published head
HEAD_MLP_RATIO = 2.0  # pooling block MLP expansion of the published head
HEAD_PARAMS = 31_894_016  # trainable parameters of the published head (sanity check)

# Vocal windowing (paper defaults)
VOCAL_THRESHOLD = 0.5  # λ: a segment counts as sung when its vocalness exceeds this
INSTRUMENTAL_THRESHOLD = 0.5  # μ: a track whose mean vocalness is below this is instrumental
MAX_PADDING_SECONDS = 10.0  # at most this much context is added around a vocal segment
MAX_WINDOWS_PER_TRACK = 20  # cap for hour-long mixes: 10 minutes of sung audio per track

ENCODER_FLOPS_PER_WINDOW = 2.27e12  # turbo encoder forward pass on one 30 s window
