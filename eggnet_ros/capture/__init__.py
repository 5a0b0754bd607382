"""Real captures: a documented folder layout for (frames + gyro + calibration), adapters for the
public phone recordings, a rosbag2 importer, blur-overlay and time-offset diagnostics, and batch
deblurring with a no-reference sharpness report (see docs/captures.md)."""
