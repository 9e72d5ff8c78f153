"""Faust agents on Kafka: the only package that imports faust or aiokafka."""
