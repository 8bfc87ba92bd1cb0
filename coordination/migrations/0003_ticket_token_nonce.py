"""The discovered-work token gets a per-ticket nonce, so it can be revoked.

AddField computes a callable default once for all existing rows; each ticket then gets its own value.
Tokens handed out before this migration stop working (they were derived without a nonce).
"""

from django.db import migrations, models

import coordination.domain.tokens


def give_each_ticket_its_own_nonce(apps, schema_editor):
    Ticket = apps.get_model("coordination", "Ticket")
    for pk in Ticket.objects.values_list("pk", flat=True).iterator():
        Ticket.objects.filter(pk=pk).update(token_nonce=coordination.domain.tokens.new_token_nonce())


class Migration(migrations.Migration):

    dependencies = [
        ("coordination", "0002_durability_and_isolation"),
    ]

    operations = [
        migrations.AddField(
            model_name="ticket",
            name="token_nonce",
            field=models.CharField(default=coordination.domain.tokens.new_token_nonce, editable=False, max_length=64),
        ),
        migrations.RunPython(give_each_ticket_its_own_nonce, migrations.RunPython.noop),
    ]
