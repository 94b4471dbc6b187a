from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("events", "0004_hash_chain_and_erasure")]

    operations = [
        migrations.AddField(model_name="stream", name="closed", field=models.BooleanField(default=False)),
    ]
