"""tenantcrm: a multi-tenant CRM for lending institutions."""
